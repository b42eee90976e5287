"""The DF planner: guidance, MCTG, metrics, bad input, and train + evaluate through `python -m main`."""

import csv
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from einops import repeat

from algorithms.diffusion_forcing.df_planning import DFPlanningConfig, DiffusionForcingPlanning
from algorithms.diffusion_forcing.guidance import ReturnGuidance
from algorithms.diffusion_forcing.maze_evaluation import (
    EpisodeRunner,
    ExpertPolicy,
    PlannerPolicy,
    episode_metrics,
    normalized_score,
)
from algorithms.diffusion_forcing.models.diffusion import Diffusion, DiffusionConfig
from algorithms.diffusion_forcing.models.transformer import TransformerConfig
from algorithms.diffusion_forcing.planning import start_token, to_frames
from datasets.maze2d.environment import start_state
from tests.conftest import ROOT, run_cli
from utils.typed_config import build

TINY_NETWORK = TransformerConfig(network_size=32, num_layers=2, attn_heads=2, dim_feedforward=64)


def tiny_planner(**overrides: object) -> DiffusionForcingPlanning:
    config = build(
        DFPlanningConfig,
        {
            "episode_len": 60,
            "observation_mean": [3.5, 3.5],
            "observation_std": [1.3, 1.5],
            "causal": False,
            "scheduling_matrix": "pyramid",
            "chunk_size": -1,
            "diffusion": {
                "sampling_timesteps": 5,
                "objective": "pred_x0",
                "beta_schedule": "linear",
                "clip_denoised": False,
                "architecture": TINY_NETWORK.__dict__,
            },
            **overrides,
        },
        "algorithm",
    )
    torch.manual_seed(0)
    return DiffusionForcingPlanning(config).eval()


def final_distance(module: DiffusionForcingPlanning, scale: float, mctg: bool = False) -> float:
    """Mean distance to the goal of the planned positions, from fixed noise."""
    object.__setattr__(module.config, "guidance_scale", scale)
    object.__setattr__(module.config, "mctg", mctg)
    states = torch.tensor([[1.0, 1.0, 0.0, 0.0], [4.0, 2.0, 0.0, 0.0]])
    goal = torch.tensor([[6.0, 6.0], [6.0, 6.0]])
    plan = module.plan(states, goal, 60, torch.Generator().manual_seed(1))
    return float((plan[..., :2] - goal[:, None]).norm(dim=-1).mean())


def test_guided_plan_moves_closer_to_the_goal() -> None:
    """On an untrained network only the pull on the estimate is sure to help; DF v1.5's guidance through the
    network is checked against the original's own plans (test_original_guidance.py)."""
    module = tiny_planner(guidance_mode="on_estimate")
    unguided, guided = final_distance(module, 0.0), final_distance(module, 2.0)
    assert guided < 0.8 * unguided


def test_mctg_plan_is_guided_too() -> None:
    module = tiny_planner(guidance_mode="on_estimate")
    assert final_distance(module, 2.0, mctg=True) < 0.8 * final_distance(module, 0.0)


def test_mctg_steers_near_tokens_by_the_expected_return_of_their_futures() -> None:
    """Identity 'network' (x̂₀ = x) and R = ⟨near, far⟩: the direct pull on the near token is the far token x_f;
    MCTG adds E[∇_near R(future)] = E[√ᾱ·x_f + √(1−ᾱ)·ε] = √ᾱ·x_f. With s = 1 and ᾱ = ½ (sigmoid, level 499) the
    guided estimate of the near token is x_n + ½·(x_f + √½·x_f), up to Monte-Carlo error over 4000 futures."""
    diffusion = Diffusion(DiffusionConfig(beta_schedule="sigmoid"))
    x = torch.tensor([[[0.3, -0.2, 0.5], [1.0, -2.0, 0.5]]])
    k = torch.full((1, 2), 499)
    near, far = torch.tensor([True, False]), torch.tensor([False, True])

    def identity(tokens: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tokens, torch.zeros_like(tokens)

    def returns(tokens: torch.Tensor) -> torch.Tensor:
        return (tokens[:, 0] * tokens[:, 1]).sum(-1)

    def guided(samples: int) -> torch.Tensor:
        guidance = ReturnGuidance(
            diffusion, returns, 1.0, "on_estimate", near, far, samples, torch.Generator().manual_seed(0)
        )
        return guidance(x, k, k - 100, identity)[0]

    x_near, x_far = x[0, 0], x[0, 1]
    torch.testing.assert_close(guided(0)[0, 0], x_near + 0.5 * x_far)
    torch.testing.assert_close(guided(4000)[0, 0], x_near + 0.5 * (1 + 0.5**0.5) * x_far, atol=0.03, rtol=0)
    torch.testing.assert_close(guided(4000)[0, 1], guided(0)[0, 1], msg="far tokens get only the direct pull")


def test_start_token_repeats_the_start_and_stays_clean_while_padding_stays_pure_noise() -> None:
    start = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert start_token(start, 3).tolist() == [[[1, 2, 1, 2, 1, 2]], [[3, 4, 3, 4, 3, 4]]]
    sampler = tiny_planner().sampler
    levels = sampler.level_matrix(1, 2, torch.device("cpu"), padding=3)
    assert (levels[:, 0] == 0).all() and (levels[:, 3:] == 5).all()
    assert levels[0, 1] == 5 and (levels[-1, 1:3] == 0).all()


def test_episode_metrics_match_hand_computed_values() -> None:
    rewards = np.array([[0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=float)
    metrics = episode_metrics(rewards)
    np.testing.assert_array_equal(metrics["episode_reward"], [3, 0, 1])
    np.testing.assert_array_equal(metrics["first_reach"], [2, 6, 0])
    np.testing.assert_array_equal(metrics["episode_reward_if_stay"], [4, 0, 6])
    np.testing.assert_array_equal(metrics["success"], [1, 0, 1])
    # D4RL maze2d-medium-v1: min 13.13, max 277.39 → R = 145.26 is exactly half way
    assert normalized_score(145.26, 13.13, 277.39) == pytest.approx(50.0)
    assert normalized_score(13.13, 13.13, 277.39) == pytest.approx(0.0)


def planning_args(data: Path, outputs: Path) -> list[str]:
    return [
        "+name=maze_test",
        "experiment=exp_planning",
        "algorithm=df_planning",
        "dataset=maze2d_medium",
        f"output_root={outputs}",
        "wandb.mode=disabled",
        "experiment.accelerator=cpu",
        f"dataset.save_dir={data}",
        "dataset.generated_steps=2000",
        "dataset.action_mean=[]",
        "dataset.action_std=[]",
        "dataset.observation_mean=[3.5092521,3.4765592]",
        "dataset.observation_std=[1.3371079,1.52102]",
        "dataset.evaluation.protocol=fixed",
        "dataset.evaluation.start_cells=[[1,1]]",
        "experiment.training.batch_size=4",
        "experiment.training.max_steps=2",
        "experiment.training.data.num_workers=0",
        "algorithm.diffusion.sampling_timesteps=3",
        "algorithm.diffusion.architecture.num_layers=1",
        "algorithm.diffusion.architecture.network_size=16",
        "algorithm.diffusion.architecture.dim_feedforward=32",
        "algorithm.open_loop_horizon=300",
        "algorithm.logged_plots=1",
    ]


def test_train_two_steps_then_evaluate_two_episodes(tmp_path: Path) -> None:
    args = [*planning_args(tmp_path / "data", tmp_path / "outputs"), "dataset.evaluation.episodes_per_start=2"]
    every_step = "experiment.training.checkpointing.every_n_train_steps=1"
    result = run_cli([*args, every_step, "experiment.tasks=[training,validation]"], cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"2 episodes: +\d+%.*/600 ", result.stderr), "the evaluation shows its progress over 600 steps"
    run_dir = next((tmp_path / "outputs").glob("*/*"))
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    periodic = torch.load(run_dir / "checkpoints" / "step_1.ckpt", weights_only=False)
    assert int(periodic["state_dict"]["trained_steps"]) == periodic["global_step"] == 1  # videos/plots name it
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert set(metrics) >= {"validation/episode_reward", "validation/first_reach", "validation/success"}
    assert metrics["validation/reference/d4rl_max"] == pytest.approx(277.39)
    assert metrics["validation/reference/expert_return"] > 100 and metrics["validation/reference/random_return"] < 50
    assert (run_dir / "plots" / "validation_episodes_step2.png").stat().st_size > 10_000
    assert (run_dir / "plots" / "validation_mpc_step2.mp4").stat().st_size > 1000
    with (run_dir / "validation_episodes_step2.csv").open() as file:
        episodes = list(csv.DictReader(file))
    scores = [float(e["normalized_score"]) for e in episodes]
    assert len(scores) == metrics["validation/episodes"] == 2 and episodes[0]["start_row"] == "1"
    assert statistics.mean(scores) == pytest.approx(metrics["validation/normalized_score"], abs=1e-4)
    assert metrics["validation/normalized_score_sem"] == pytest.approx(statistics.stdev(scores) / 2**0.5, abs=1e-6)
    assert list((tmp_path / "data").glob("maze2d-medium-v1-generated-2000-seed0.hdf5"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset.env_id=PointMaze_Tiny-v3", "error: dataset.env_id: unknown maze2d environment 'PointMaze_Tiny-v3'"),
        (
            "dataset.observation_mean=[3.5,3.4,0.0]",
            "error: dataset.observation_std: has 2 entries but observation_mean",
        ),
        ("algorithm.guidance_scale=-1", "error: algorithm.guidance_scale: must be >= 0"),
        ("dataset.evaluation.start_cells=[[0,0]]", "error: dataset.evaluation: cell [0, 0] is not a free cell"),
        ("dataset.dataset_url=http://127.0.0.1:9/none.hdf5", "error: dataset.dataset_url: cannot download"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path: Path, override: str, message: str) -> None:
    result = run_cli([*planning_args(tmp_path / "data", tmp_path / "outputs"), override], cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))


def test_planner_tokens_pair_each_action_with_the_state_it_led_to() -> None:
    """DF v1.5's layout: token 0 = the start repeated with no action, then frames (s_{t+1}, a_t)."""
    module = tiny_planner(action_mean=[0.0, 0.0], action_std=[2.0, 2.0])
    batch = {"observations": torch.randn(3, 61, 4), "actions": torch.randn(3, 61, 2)}
    tokens = module.plan_tokens(batch)
    assert tokens.shape == (3, 7, 40)
    start = torch.cat([module.normalize(batch["observations"][:, 0, :2]), torch.zeros(3, 2)], dim=-1)
    torch.testing.assert_close(tokens[:, 0], repeat(start, "b c -> b (s c)", s=10))
    first_plan_frame = module.normalize(torch.cat([batch["observations"][:, 1, :2], batch["actions"][:, 0]], -1))
    torch.testing.assert_close(tokens[:, 1, :4], first_plan_frame)


SEED_README_COMMANDS = [
    "experiment=exp_planning algorithm=df_planning dataset=maze2d_medium dataset.action_mean=[] dataset.action_std=[] "
    "dataset.observation_mean=[3.5092521,3.4765592] dataset.observation_std=[1.3371079,1.52102] +name=maze2d_medium_x",
    "experiment=exp_planning algorithm=df_planning dataset=maze2d_large dataset.observation_mean=[3.7296331,5.3047247] "
    "dataset.observation_std=[1.8070312,2.5687592] dataset.action_mean=[] dataset.action_std=[] +name=maze2d_large_x",
    "experiment=exp_planning algorithm=df_planning dataset=maze2d_medium dataset.action_mean=[] dataset.action_std=[] "
    "dataset.observation_mean=[3.5092521,3.4765592] dataset.observation_std=[1.3371079,1.52102] "
    "load=outputs/maze2d_medium_x.ckpt experiment.tasks=[validation] algorithm.guidance_scale=3 "
    "+name=maze2d_medium_x_sampling",
]


@pytest.mark.parametrize("command", SEED_README_COMMANDS)
def test_seed_readme_maze_commands_compose_and_check(command: str, tmp_path: Path) -> None:
    """The seed README's maze command lines, word for word, give a valid planning configuration."""
    from experiments import experiment_class
    from tests.conftest import compose_config

    cfg = compose_config(command.split(), tmp_path)
    cls = experiment_class(cfg.experiment._name)
    cls.check_tasks(list(cfg.experiment.tasks))
    cls.check_config(cfg)
    config = build(DFPlanningConfig, cfg.algorithm, "algorithm")
    assert config.frame_dim == 2 and config.n_frames == cfg.dataset.episode_len // 10 + 1
    assert config.diffusion.architecture.num_layers == 12 and config.diffusion.architecture.network_size == 128


class Recording:
    """A policy wrapper that keeps the actions it took, (B, L, 2)."""

    def __init__(self, policy: object) -> None:
        self.policy, self.actions = policy, []

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        self.policy.begin(states, goals)

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        self.actions.append(self.policy.act(states, step))
        return self.actions[-1]


class FixedPlanner:
    """Stands in for the planning module: its plan is given."""

    def __init__(self, config: DFPlanningConfig, frames: torch.Tensor) -> None:
        self.config, self.frames, self.device = config, frames, torch.device("cpu")

    def plan(self, states: torch.Tensor, goal: torch.Tensor, horizon: int, generator: torch.Generator) -> torch.Tensor:
        return self.frames[:, :horizon]


def test_executing_a_plans_actions_from_its_start_tracks_its_planned_states() -> None:
    """Tokens pair each action with the state it led to, and MPC executes frame j's action at step j."""
    runner = EpisodeRunner("PointMaze_Medium-v3", episode_len=60)
    cells, goals = [(1, 1), (5, 4)], [(6, 6), (6, 6)]
    starts = np.stack([start_state(c, np.random.default_rng(seed)) for c, seed in zip(cells, [3, 4], strict=True)])
    expert = Recording(ExpertPolicy(runner.maze))
    episode = runner.run(expert, starts, goals, cells)
    actions = np.stack(expert.actions, axis=1)
    module = tiny_planner(
        observation_mean=[3.5, 3.5, 0.0, 0.0],
        observation_std=[1.3, 1.5, 2.3, 2.4],
        action_mean=[0.0, 0.0],
        action_std=[0.7, 0.7],
    )
    batch = {
        "observations": torch.as_tensor(episode.states, dtype=torch.float32),
        "actions": torch.as_tensor(np.concatenate([actions, actions[:, -1:]], axis=1), dtype=torch.float32),
    }
    plan = module.unnormalize(to_frames(module.plan_tokens(batch)[:, 1:], 10))  # what a perfect planner returns
    policy = PlannerPolicy(FixedPlanner(module.config, plan), 60, 60, seed=0)
    executed = runner.run(policy, starts, goals, cells)
    runner.close()
    np.testing.assert_allclose(executed.states[:, 1:], plan[..., :4].numpy(), atol=1e-4)
