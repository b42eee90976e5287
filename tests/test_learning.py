"""Tests that fail when learning breaks: a tiny video model overfits a batch, and learns a task where the next
frame follows from the context and the action, beating the untrained model and copying the last frame."""

import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from algorithms.diffusion_forcing.context_probe import context_probe
from algorithms.diffusion_forcing.df_base import DiffusionForcingBase
from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from tests.conftest import compose_config, tiny_run_overrides
from tests.learning_tasks import moving_squares
from utils.typed_config import build

N_FRAMES, N_CONTEXT = 4, 2


def squares_model(tmp_path: Path, *overrides: str) -> DiffusionForcingVideo:
    """The real df_video config, composed as `python -m main` does, sized for 16² moving squares."""
    cfg = compose_config(
        [
            *tiny_run_overrides(tmp_path),
            f"dataset.n_frames={N_FRAMES}",
            f"dataset.context_length={N_CONTEXT}",
            "dataset.external_cond_dim=4",
            "experiment.training.lr=2e-3",
            "algorithm.warmup_steps=20",
            "algorithm.diffusion.architecture.network_size=16",
            "algorithm.diffusion.architecture.attn_resolutions=[8,16]",
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


def probe(algorithm: DiffusionForcingVideo) -> dict[str, float]:
    clips = moving_squares(16, N_FRAMES, seed=12345)
    generator = torch.Generator().manual_seed(1)
    return context_probe(algorithm.sampler, clips["videos"], N_CONTEXT, 800, clips["actions"], generator)


def test_overfitting_one_batch_cuts_its_loss_tenfold(tmp_path: Path) -> None:
    algorithm = squares_model(tmp_path)
    batch = moving_squares(4, N_FRAMES, seed=0)
    before = fixed_loss(algorithm, batch)
    train(algorithm, lambda step: batch, steps=150)
    after = fixed_loss(algorithm, batch)
    assert after < before / 10, f"loss {before:.4f} -> {after:.4f}"


def test_brief_training_learns_to_use_the_context_and_the_actions(tmp_path: Path) -> None:
    algorithm = squares_model(tmp_path)
    untrained = probe(algorithm)
    train(algorithm, lambda step: moving_squares(8, N_FRAMES, seed=step), steps=300)
    trained = probe(algorithm)
    print(untrained, trained)
    assert trained["own"] < untrained["own"] / 2
    assert trained["own"] < trained["copy_last"] / 2, "beats copying the last frame"
    assert trained["own"] < trained["other"] / 2, "the clip's own context matters"
