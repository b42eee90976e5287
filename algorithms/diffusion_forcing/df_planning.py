"""`algorithm=df_planning`: Diffusion Forcing as a maze2d planner (DF v1.5's transformer planner, plus MCTG).

Frames are (state[, action]) normalised by `dataset.observation_mean/std` and `dataset.action_mean/std`; their
lengths say what is modelled: 2 → (row, col), 4 → with velocities; `action_mean=[]` → no actions (a PD controller
tracks the planned positions instead). Training follows DF v1.5: independent noise levels per token, and a random
horizon per sample whose later tokens are labelled pure noise and weigh 0.05 in the loss (flexible horizon).
Validation runs the evaluation protocol in the maze with MPC (`maze_evaluation.py`).
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from utils.typed_config import ConfigError, require

from .df_base import DFBaseConfig, DiffusionForcingBase
from .guidance import GuidanceMode, ReturnGuidance
from .maze_evaluation import (
    EpisodeBatch,
    EpisodeRunner,
    PlannerPolicy,
    episode_metrics,
    normalized_score,
    reference_returns,
)
from .maze_plots import mpc_animation, plot_episodes
from .models.diffusion import DiffusionConfig
from .models.transformer import PlanningTransformer, TransformerConfig
from .planning import goal_distance_return, original_goal_return, start_token, to_frames, to_tokens

PADDING_LOSS_WEIGHT = 0.05  # DF v1.5: padded tokens still teach the network a little about the continuation


@dataclass(frozen=True)
class PlanningDiffusionConfig(DiffusionConfig):
    architecture: TransformerConfig = field(default_factory=TransformerConfig)


@dataclass(frozen=True)
class DFPlanningConfig(DFBaseConfig):
    """The shared DF keys (`n_frames` is derived: one start token + episode_len / frame_stack) plus planning."""

    n_frames: int = 0
    context_frames: int = 1
    env_id: str = "PointMaze_Medium-v3"
    episode_len: int = 600
    evaluation_protocol: Literal["d4rl", "fixed"] = "d4rl"  # which reference policies `normalized_score_protocol`
    evaluation_seed: int = 0  # uses: D4RL's scripts (seeded as they were) or ours
    observation_mean: tuple[float, ...] = ()
    observation_std: tuple[float, ...] = ()
    action_mean: tuple[float, ...] = ()
    action_std: tuple[float, ...] = ()
    frame_stack: int = 10
    guidance_scale: float = 2.0
    guidance_mode: GuidanceMode = "through_network"
    open_loop_horizon: int = 50
    mctg: bool = False
    mctg_samples: int = 4
    logged_plots: int = 4
    diffusion: PlanningDiffusionConfig = field(default_factory=PlanningDiffusionConfig)

    def __post_init__(self) -> None:
        require(self.frame_stack >= 1, "frame_stack", f"must be >= 1, got {self.frame_stack}")
        require(
            self.noise_level == "random_all",
            "noise_level",
            f"the planner trains with DF's random_all levels (and its own first-token rule), got {self.noise_level!r}",
        )
        require(
            self.episode_len % self.frame_stack == 0,
            "frame_stack",
            f"must divide dataset.episode_len={self.episode_len}, got {self.frame_stack}",
        )
        object.__setattr__(self, "n_frames", self.episode_len // self.frame_stack + 1)
        super().__post_init__()
        require(
            self.guidance_scale >= 0, "guidance_scale", f"must be >= 0 (0 = no guidance), got {self.guidance_scale}"
        )
        require(self.open_loop_horizon >= 1, "open_loop_horizon", f"must be >= 1, got {self.open_loop_horizon}")
        require(self.mctg_samples >= 2, "mctg_samples", f"must be >= 2 futures to average, got {self.mctg_samples}")
        require(len(self.observation_mean) in (2, 4), "observation_mean", "must have 2 or 4 entries")
        require(len(self.action_mean) in (0, 2), "action_mean", "must have 0 or 2 entries")

    @property
    def frames_per_token(self) -> int:
        return self.frame_stack * self.frame_skip

    @property
    def frame_dim(self) -> int:
        return len(self.observation_mean) + len(self.action_mean)


class DiffusionForcingPlanning(DiffusionForcingBase):
    """Plans (state[, action]) frames toward a goal; evaluated by executing its plans in the maze."""

    def __init__(self, config: DFPlanningConfig) -> None:
        network = PlanningTransformer(
            config.diffusion.architecture, config.frame_dim * config.frame_stack, causal=config.causal
        )
        super().__init__(config, config.diffusion, network)
        self.register_buffer("mean", torch.tensor([*config.observation_mean, *config.action_mean]).float())
        self.register_buffer("std", torch.tensor([*config.observation_std, *config.action_std]).float())
        self.runner = EpisodeRunner(config.env_id, config.episode_len)
        self._episodes: list[dict[str, float]] = []  # this evaluation's episodes, for their spread and a table

    def original_extras(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """DF v1.5 keeps the normalisation of (observation, action) frames as `data_mean` / `data_std`."""
        mean, std = state["data_mean"], state["data_std"]
        if mean.shape != self.mean.shape:
            raise ConfigError(
                "load",
                f"the checkpoint models frames of {len(mean)} numbers, this configuration {len(self.mean)}: set "
                "dataset.observation_mean/std and dataset.action_mean/std as it was trained (the seed README's maze "
                "commands use 2 observation numbers and action_mean=[] action_std=[])",
            )
        return {"mean": mean, "std": std}

    def plan_tokens(self, batch: dict[str, Tensor]) -> Tensor:
        """Normalised tokens (B, 1 + L/fs, fs·C) of a training window of L+1 states and actions (DF v1.5's layout).

        Token 0 is the start state repeated, with zero actions (none led to it); the frames of later tokens pair
        each action with the state it led to, (s_{t+1}, a_t), so a plan's frame j says what to do at step j.
        """
        cfg = self.config
        observations = batch["observations"][..., : len(cfg.observation_mean)]
        start, later = self.normalize(observations[:, 0]), [observations[:, 1:]]
        if cfg.action_mean:
            start = torch.cat([start, torch.zeros_like(batch["actions"][:, 0])], dim=-1)
            later.append(batch["actions"][:, :-1])
        frames = self.normalize(torch.cat(later, dim=-1))
        return torch.cat([start_token(start, cfg.frame_stack), to_tokens(frames, cfg.frame_stack)], dim=1)

    def normalize(self, frames: Tensor) -> Tensor:
        return (frames - self.mean[: frames.shape[-1]]) / self.std[: frames.shape[-1]]

    def unnormalize(self, frames: Tensor) -> Tensor:
        return frames * self.std[: frames.shape[-1]] + self.mean[: frames.shape[-1]]

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """DF v1.5's planner training: independent levels, a flexible horizon, and a start that is mostly known.

        Tokens after a random last plan token are padding: labelled pure noise, their loss weighted 0.05. In half
        of the batches the start token's level is drawn from the lowest quarter of the schedule.
        """
        x0 = self.plan_tokens(batch)
        batch_size, n_tokens = x0.shape[:2]
        timesteps = self.diffusion.config.timesteps
        k = torch.randint(0, timesteps, (batch_size, n_tokens), device=x0.device)
        last = torch.randint(1, n_tokens, (batch_size, 1), device=x0.device)
        padding = torch.arange(n_tokens, device=x0.device)[None] > last
        k = torch.where(padding, timesteps - 1, k)
        if torch.rand(()) < 0.5:
            k[:, 0] = torch.randint(0, timesteps // 4, (batch_size,), device=x0.device)
        weights = torch.where(padding, PADDING_LOSS_WEIGHT, 1.0)
        loss = self.denoising_loss(x0, k, None, weights)
        self.log("training/loss", loss, prog_bar=True, batch_size=batch_size)
        return loss

    @torch.no_grad()
    def plan(self, states: Tensor, goal: Tensor, horizon: int, generator: torch.Generator | None = None) -> Tensor:
        """Unnormalised frames (B, horizon, C) from D4RL states (B, 4) toward goals (B, 2), by the one sampler."""
        cfg = self.config
        n_observed = len(cfg.observation_mean)
        start = self.normalize(states[:, :n_observed])
        goal_frame = self.normalize(torch.cat([goal, torch.zeros_like(goal)], dim=-1)[:, :n_observed])
        if cfg.action_mean:  # no action led to the start; the goal asks for none
            start, goal_frame = (torch.cat([f, torch.zeros_like(f[:, :2])], dim=-1) for f in (start, goal_frame))
        plan_tokens = -(-horizon // cfg.frame_stack)
        if not 1 <= plan_tokens < cfg.n_frames:
            raise ValueError(f"horizon {horizon} needs 1..{(cfg.n_frames - 1) * cfg.frame_stack} frames")
        guided = cfg.guidance_scale > 0
        guidance = self.guidance(start, goal_frame, goal, horizon, generator) if guided else None
        tokens = self.sampler.sample_window(
            start_token(start, cfg.frame_stack),
            plan_tokens,
            generator=generator,
            padding=cfg.n_frames - 1 - plan_tokens,
            guidance=guidance,
        )
        return self.unnormalize(to_frames(tokens, cfg.frame_stack)[:, :horizon])

    def guidance(
        self, start: Tensor, goal_frame: Tensor, goal: Tensor, horizon: int, generator: torch.Generator | None
    ) -> ReturnGuidance:
        """Goal guidance of `guidance_mode` with its return; MCTG steers the tokens the next MPC segment executes."""
        cfg = self.config
        if cfg.guidance_mode == "through_network":
            returns = original_goal_return(start, goal_frame, cfg.frame_stack, len(cfg.observation_mean))
        else:
            returns = goal_distance_return(goal, horizon, cfg.frame_dim, self.mean, self.std)
        plan_tokens = -(-horizon // cfg.frame_stack)
        index = torch.arange(cfg.n_frames, device=start.device)
        executed = min(-(-cfg.open_loop_horizon // cfg.frame_stack), plan_tokens)
        near, far = (index >= 1) & (index <= executed), (index > executed) & (index <= plan_tokens)
        samples = cfg.mctg_samples if cfg.mctg else 0
        mode = cfg.guidance_mode
        return ReturnGuidance(self.diffusion, returns, cfg.guidance_scale, mode, near, far, samples, generator)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "validation")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, split: str) -> None:
        """Run a batch of protocol episodes with MPC; log the metrics, and pictures of the first batch."""
        cfg = self.config
        namespace = self._namespace(split)
        cells = [tuple(c) for c in batch["start_cell"].tolist()]
        goals = [tuple(c) for c in batch["goal_cell"].tolist()]
        starts = batch["start_state"].double().cpu().numpy()
        policy = PlannerPolicy(self, cfg.episode_len, cfg.open_loop_horizon, int(batch["seed"][0]))
        episodes = self.runner.run(policy, starts, goals, cells, progress=True)
        per_episode = episode_metrics(episodes.rewards)
        metrics = {k: float(v.mean()) for k, v in per_episode.items()}
        maze = self.runner.maze
        random_return, expert_return = reference_returns(
            self.runner, starts, goals, cfg.evaluation_protocol, cfg.evaluation_seed
        )
        metrics |= {
            "normalized_score": float(
                normalized_score(metrics["episode_reward"], maze.d4rl_ref_min_score, maze.d4rl_ref_max_score)
            ),
            "normalized_score_protocol": float(
                normalized_score(metrics["episode_reward"], random_return, expert_return)
            ),
            "reference/random_return": random_return,
            "reference/expert_return": expert_return,
            "reference/d4rl_min": maze.d4rl_ref_min_score,
            "reference/d4rl_max": maze.d4rl_ref_max_score,
        }
        self.log_dict({f"{namespace}/{k}": v for k, v in metrics.items()}, batch_size=len(cells))
        per_episode["normalized_score"] = normalized_score(
            per_episode["episode_reward"], maze.d4rl_ref_min_score, maze.d4rl_ref_max_score
        )
        for i, (cell, goal) in enumerate(zip(cells, goals, strict=True)):
            record = {"start_row": cell[0], "start_col": cell[1], "goal_row": goal[0], "goal_col": goal[1]}
            self._episodes.append(record | {k: float(v[i]) for k, v in per_episode.items()})
        if batch_idx == 0 and cfg.logged_plots > 0:
            self._write_pictures(episodes, namespace)

    def on_validation_epoch_start(self) -> None:
        self._episodes = []

    def on_test_epoch_start(self) -> None:
        self._episodes = []

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("validation")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _finish_evaluation(self, split: str) -> None:
        """The spread of the score over this process's episodes (the mean is logged per batch), and a table of
        every episode: `<run dir>/<split>_episodes_step<N>.csv`."""
        if not self._episodes:
            return
        namespace = self._namespace(split)
        scores = torch.tensor([e["normalized_score"] for e in self._episodes], dtype=torch.float64)
        spread = scores.std() if len(scores) > 1 else torch.zeros((), dtype=torch.float64)
        self.log_dict(
            {
                f"{namespace}/normalized_score_std": float(spread),
                f"{namespace}/normalized_score_sem": float(spread / len(scores) ** 0.5),
                f"{namespace}/episodes": float(len(scores)),
            }
        )
        path = Path(self.trainer.default_root_dir) / f"{namespace}_episodes_step{self.step}.csv"
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(self._episodes[0]))
            writer.writeheader()
            writer.writerows(self._episodes)

    def _namespace(self, split: str) -> str:
        return split if self.config.guidance_scale > 0 else f"{split}_no_guidance"

    def _write_pictures(self, episodes: EpisodeBatch, namespace: str) -> None:
        folder = Path(self.trainer.default_root_dir) / "plots"
        step = self.step
        title = f"{namespace}, step {step}: executed (blue) and first plan (orange)"
        picture = plot_episodes(
            folder / f"{namespace}_episodes_step{step}.png", episodes, self.config.logged_plots, title
        )
        animation = mpc_animation(folder / f"{namespace}_mpc_step{step}.mp4", episodes)
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(f"{namespace}/episodes", [str(picture)], step=step)
                logger.log_video(f"{namespace}/mpc_replans", [str(animation)], step=step, format=["mp4"])
