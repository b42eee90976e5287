"""Tests that fail when learning breaks: a tiny video model overfits a batch and learns a task where the next
frame follows from the context and the action, beating the untrained model and copying the last frame; a small
planner learns to reach a maze's goal, which a random policy does not."""

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from algorithms.diffusion_forcing.context_probe import context_probe
from algorithms.diffusion_forcing.df_base import DiffusionForcingBase
from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from tests.conftest import compose_config, tiny_run_overrides
from tests.learning_tasks import moving_squares
from utils.typed_config import build

N_FRAMES, N_CONTEXT = 4, 2


@pytest.fixture
def one_thread():
    """The tiny networks' operations are too small to share between threads: one thread is faster, and steady
    when other work runs beside the tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def squares_model(tmp_path: Path, size: int, *overrides: str) -> DiffusionForcingVideo:
    """The real df_video config, composed as `python -m main` does, sized for moving squares of `size`²."""
    cfg = compose_config(
        [
            *tiny_run_overrides(tmp_path),
            f"dataset.resolution={size}",
            f"dataset.n_frames={N_FRAMES}",
            f"dataset.context_length={N_CONTEXT}",
            "dataset.external_cond_dim=4",
            "experiment.training.lr=2e-3",
            "algorithm.warmup_steps=20",
            "algorithm.diffusion.architecture.network_size=16",
            f"algorithm.diffusion.architecture.attn_resolutions=[{size // 2},{size}]",
            *overrides,
        ],
        tmp_path / "run",
    )
    torch.manual_seed(0)
    return DiffusionForcingVideo(build(DFVideoConfig, cfg.algorithm, "algorithm"))


def train(algorithm: DiffusionForcingBase, batches: Callable[[int], dict], steps: int) -> None:
    """The module's own training step, optimiser and LR schedule, with the trainer's gradient clipping."""
    optimization = algorithm.configure_optimizers()
    optimizer, schedule = optimization["optimizer"], optimization["lr_scheduler"]["scheduler"]
    algorithm.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        for step in range(steps):
            loss = algorithm.training_step(batches(step), step)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(algorithm.parameters(), 1.0)
            optimizer.step()
            schedule.step()
    algorithm.eval()


def fixed_loss(algorithm: DiffusionForcingBase, batch: dict) -> float:
    """The denoising loss of `batch` at fixed levels and noise, comparable before and after training."""
    x0, cond, mask = algorithm.tokens(batch)
    generator = torch.Generator().manual_seed(0)
    k = torch.randint(0, algorithm.diffusion.config.timesteps, x0.shape[:2], generator=generator)
    with torch.no_grad():
        return float(algorithm.denoising_loss(x0, k, cond, mask, generator))


def probe(algorithm: DiffusionForcingVideo, size: int) -> dict[str, float]:
    clips = moving_squares(16, N_FRAMES, seed=12345, size=size)
    generator = torch.Generator().manual_seed(1)
    return context_probe(algorithm.sampler, clips["videos"], N_CONTEXT, 800, clips["actions"], generator)


def overfit(tmp_path: Path, size: int, steps: int) -> tuple[float, float]:
    algorithm = squares_model(tmp_path, size)
    batch = moving_squares(4, N_FRAMES, seed=0, size=size)
    before = fixed_loss(algorithm, batch)
    train(algorithm, lambda step: batch, steps)
    return before, fixed_loss(algorithm, batch)


def learn_squares(tmp_path: Path, size: int, steps: int) -> tuple[dict[str, float], dict[str, float]]:
    algorithm = squares_model(tmp_path, size)
    untrained = probe(algorithm, size)
    train(algorithm, lambda step: moving_squares(8, N_FRAMES, seed=step, size=size), steps)
    return untrained, probe(algorithm, size)


def check_learnt(untrained: dict[str, float], trained: dict[str, float]) -> None:
    assert trained["own"] < untrained["own"] / 2, (untrained, trained)
    assert trained["own"] < trained["copy_last"] / 2, f"beats copying the last frame: {trained}"
    assert trained["own"] < trained["other"] / 2, f"the clip's own context matters: {trained}"
    # 300 steps only begin to use the actions (the longer test below checks that they are learnt); a network
    # that never sees them scores exactly the same with another clip's action
    assert trained["own"] < 0.9 * trained["other_actions"], f"the frame's own action matters: {trained}"


@pytest.mark.usefixtures("one_thread")
def test_overfitting_one_batch_cuts_its_loss_tenfold(tmp_path: Path) -> None:
    before, after = overfit(tmp_path, size=8, steps=250)
    assert after < before / 10, f"loss {before:.4f} -> {after:.4f}"


@pytest.mark.usefixtures("one_thread")
def test_brief_training_learns_to_use_the_context_and_the_actions(tmp_path: Path) -> None:
    check_learnt(*learn_squares(tmp_path, size=8, steps=300))


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_overfitting_one_batch_of_larger_frames(tmp_path: Path) -> None:
    before, after = overfit(tmp_path, size=16, steps=500)
    assert after < before / 20, f"loss {before:.4f} -> {after:.4f}"


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_longer_training_learns_the_actions(tmp_path: Path) -> None:
    untrained, trained = learn_squares(tmp_path, size=8, steps=1000)
    check_learnt(untrained, trained)
    assert trained["own"] < trained["other_actions"] / 4, f"the frame's own action decides the motion: {trained}"


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_training_learns_the_context_and_actions_of_larger_frames(tmp_path: Path) -> None:
    check_learnt(*learn_squares(tmp_path, size=16, steps=400))


def umaze_planner_run(tmp_path: Path, steps: int) -> list[str]:
    """A small positions-only planner trained `steps` steps on 20k generated umaze steps, then evaluated (MPC,
    guided as DF v1.5) from the three cells of the maze's far arm — the random policy never reaches the goal."""
    return [
        "+name=learning",
        "experiment=exp_planning",
        "algorithm=df_planning",
        "dataset=maze2d_umaze",
        f"output_root={tmp_path / 'outputs'}",
        "wandb.mode=disabled",
        "experiment.accelerator=cpu",
        f"dataset.save_dir={tmp_path / 'data'}",
        "dataset.generated_steps=20000",
        "dataset.action_mean=[]",
        "dataset.action_std=[]",
        "dataset.observation_mean=[1.9327888,2.3744664]",
        "dataset.observation_std=[0.89972174,0.7093159]",
        "dataset.evaluation.protocol=fixed",
        "dataset.evaluation.start_cells=[[3,1],[3,2],[3,3]]",
        "dataset.evaluation.episodes_per_start=2",
        "experiment.training.batch_size=32",
        f"experiment.training.max_steps={steps}",
        "experiment.training.lr=1e-3",
        "algorithm.warmup_steps=50",
        "experiment.training.data.num_workers=0",
        "experiment.validation.val_every_n_step=100000",
        "algorithm.diffusion.sampling_timesteps=10",
        "algorithm.diffusion.architecture.num_layers=2",
        "algorithm.diffusion.architecture.network_size=64",
        "algorithm.diffusion.architecture.dim_feedforward=128",
        "algorithm.guidance_scale=8",
        "algorithm.logged_plots=0",
        "experiment.tasks=[training,validation]",
    ]


def test_briefly_trained_planner_reaches_the_goal_more_often_than_random(tmp_path: Path, run_main) -> None:
    run_dir = run_main(umaze_planner_run(tmp_path, steps=400))
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert metrics["validation/reference/random_return"] == 0, "the random policy never reaches from the far arm"
    assert metrics["validation/success"] > 0 and metrics["validation/episode_reward"] > 0


@pytest.mark.slow
def test_the_umaze_recipe_reaches_the_goal_from_the_far_arm_in_most_episodes(tmp_path: Path, run_main) -> None:
    """The CPU umaze recipe (README: success 1.00 on D4RL's 100 episodes after 5,000 steps on 1M generated steps)
    shortened to 2,000 steps on 200k, from the far arm that the random policy never leaves."""
    run_dir = run_main(
        [
            "+name=learning",
            "+recipe=maze2d_umaze_cpu",
            f"output_root={tmp_path / 'outputs'}",
            "wandb.mode=disabled",
            "experiment.accelerator=cpu",
            f"dataset.save_dir={tmp_path / 'data'}",
            "dataset.generated_steps=200000",
            "dataset.evaluation.protocol=fixed",
            "dataset.evaluation.start_cells=[[3,1],[3,2],[3,3]]",
            "dataset.evaluation.episodes_per_start=2",
            "experiment.training.max_steps=2000",
            "experiment.training.data.num_workers=0",
            "algorithm.logged_plots=0",
            "experiment.tasks=[training,validation]",
        ]
    )
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert metrics["validation/reference/random_return"] == 0, "the random policy never reaches from the far arm"
    assert metrics["validation/success"] >= 0.5, metrics
