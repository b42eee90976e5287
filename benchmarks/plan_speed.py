"""Planning cost: one plan (default horizon and sampling steps) and whole evaluation episodes per second.

    python -m benchmarks.plan_speed                            # default df_planning (12 layers), maze2d-medium
    python -m benchmarks.plan_speed --checkpoint run/checkpoints/last.ckpt --overrides +recipe=maze2d_medium_cpu
    python -m benchmarks.plan_speed --episodes 8 --overrides algorithm.diffusion.architecture.num_layers=6

Prints the latency of one plan unguided, guided and with MCTG (same inputs and noise), their ratios, and
evaluation episodes per second (MPC, replanning every `open_loop_horizon` steps) next to the expert's.
"""

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from algorithms.diffusion_forcing.df_planning import DFPlanningConfig, DiffusionForcingPlanning
from algorithms.diffusion_forcing.maze_evaluation import EpisodeRunner, ExpertPolicy, PlannerPolicy
from benchmarks.common import CONFIG_DIR, parameter_count, pick_device, synchronize
from datasets.maze2d.maze2d_dataset import Maze2dDatasetConfig
from utils.typed_config import build


def load_planner(
    overrides: list[str], checkpoint: str | None, device: torch.device
) -> tuple[DiffusionForcingPlanning, Maze2dDatasetConfig]:
    """The planner and dataset of the composed config (medium by default), with a checkpoint's weights if given."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose(
            config_name="config",
            overrides=["experiment=exp_planning", "algorithm=df_planning", "dataset=maze2d_medium", *overrides],
        )
    model = DiffusionForcingPlanning(build(DFPlanningConfig, cfg.algorithm, "algorithm"))
    if checkpoint:
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"])
    return model.to(device).eval(), build(Maze2dDatasetConfig, cfg.dataset, "dataset")


def one_plan(
    model: DiffusionForcingPlanning, scale: float, mctg: bool, batch: int, device: torch.device
) -> torch.Tensor:
    """A plan of the default horizon from (1, 1) toward (6, 6), with its noise seeded."""
    model.config = replace(model.config, guidance_scale=scale, mctg=mctg)
    states = torch.tensor([[1.0, 1.0, 0.0, 0.0]], device=device).repeat(batch, 1)
    goal = torch.tensor([[6.0, 6.0]], device=device).repeat(batch, 1)
    return model.plan(states, goal, model.config.episode_len, torch.Generator(device).manual_seed(0))


def plan_seconds(model: DiffusionForcingPlanning, scale: float, mctg: bool, batch: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    one_plan(model, scale, mctg, batch, device)
    synchronize(device)
    return time.perf_counter() - start


def episodes_per_second(runner: EpisodeRunner, policy, dataset: Maze2dDatasetConfig, count: int) -> float:
    episodes = dataset.episodes()[:count]
    starts = np.stack([e.start_state for e in episodes])
    start = time.perf_counter()
    runner.run(policy, starts, [dataset.goal_cell] * len(episodes), [e.start_cell for e in episodes])
    return len(episodes) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--overrides", nargs="*", default=[])
    parser.add_argument("--episodes", type=int, default=4, help="evaluation episodes run in parallel (0: none)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    model, dataset = load_planner(args.overrides, args.checkpoint, device)
    cfg = model.config
    print(
        f"{cfg.env_id}, {parameter_count(model) / 1e6:.2f} M parameters, {cfg.diffusion.architecture.num_layers} "
        f"layers, horizon {cfg.episode_len}, {cfg.diffusion.sampling_timesteps} sampling steps, {device}"
    )
    scale = cfg.guidance_scale or 2.0
    plan_seconds(model, 0.0, False, 1, device)  # warm-up
    timings = {
        "unguided": plan_seconds(model, 0.0, False, 1, device),
        f"guided (scale {scale:g})": plan_seconds(model, scale, False, 1, device),
        f"MCTG ({cfg.mctg_samples} futures)": plan_seconds(model, scale, True, 1, device),
    }
    base = timings["unguided"]
    for name, seconds in timings.items():
        print(f"one plan, {name}: {seconds:.2f} s ({seconds / base:.2f}x unguided)")
    if args.episodes < 1:
        return
    runner = EpisodeRunner(cfg.env_id, cfg.episode_len)
    model.config = replace(cfg, guidance_scale=scale, mctg=False)
    planner_rate = episodes_per_second(
        runner, PlannerPolicy(model, cfg.episode_len, cfg.open_loop_horizon, 0), dataset, args.episodes
    )
    expert_rate = episodes_per_second(runner, ExpertPolicy(runner.maze), dataset, args.episodes)
    print(
        f"evaluation: {planner_rate:.3f} episodes/s with the planner (replanning every {cfg.open_loop_horizon} steps, "
        f"{args.episodes} in parallel), {expert_rate:.1f} episodes/s with the expert"
    )
    runner.close()


if __name__ == "__main__":
    main()
