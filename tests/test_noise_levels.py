"""`algorithm.noise_level`: Diffusion Forcing's independent levels and the paper's two baselines, one network."""

import json
from pathlib import Path

import pytest
import torch

from algorithms.diffusion_forcing.df_base import training_levels
from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from tests.conftest import compose_config
from utils.typed_config import build

T = 1000


def test_random_all_draws_an_independent_level_per_token() -> None:
    torch.manual_seed(0)
    k, counted = training_levels("random_all", (64, 8), T, torch.device("cpu"))
    assert counted is None and k.min() >= 0 and k.max() < T
    assert (k != k[:, :1]).any(dim=1).all(), "levels differ within every clip"


def test_full_sequence_shares_one_level_per_clip() -> None:
    torch.manual_seed(0)
    k, counted = training_levels("full_sequence", (64, 8), T, torch.device("cpu"))
    assert counted is None and (k == k[:, :1]).all()
    assert len(k[:, 0].unique()) > 32, "but clips differ"


def test_teacher_forcing_noises_one_token_after_a_clean_history() -> None:
    torch.manual_seed(0)
    k, counted = training_levels("teacher_forcing", (256, 8), T, torch.device("cpu"))
    targets = counted.argmax(dim=1)
    assert (counted.sum(dim=1) == 1).all() and targets.min() == 1 and targets.max() == 7
    for levels, target in zip(k, targets, strict=True):
        assert (levels[:target] == -1).all() and (levels[target + 1 :] == T - 1).all()
        assert 0 <= levels[target] < T


def test_clean_tokens_reach_the_network_as_in_sampling(tiny: list[str], tmp_path: Path) -> None:
    cfg = compose_config(tiny, tmp_path / "run")
    algorithm = DiffusionForcingVideo(build(DFVideoConfig, cfg.algorithm, "algorithm"))
    seen = {}

    def recorder(x: torch.Tensor, k: torch.Tensor, cond: object, positions: object) -> torch.Tensor:
        seen.update(x=x, k=k)
        return torch.zeros_like(x)

    algorithm.model.forward = recorder
    x0 = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    k = torch.tensor([[-1, -1, 500, 999], [-1, 300, 999, 999]])
    algorithm.denoising_loss(x0, k, None)
    expected_x, expected_k = algorithm.diffusion.stabilize(x0, torch.full_like(k, -1))
    assert torch.equal(seen["k"][k < 0], expected_k[k < 0])
    assert torch.allclose(seen["x"][k < 0], expected_x[k < 0])
    assert torch.equal(seen["k"][k >= 0], k[k >= 0])


@pytest.mark.parametrize("mode", ["teacher_forcing", "full_sequence"])
def test_each_mode_trains_and_samples(mode: str, tiny: list[str], run_main) -> None:
    run_dir = run_main([*tiny, f"algorithm.noise_level={mode}", "experiment.tasks=[training,validation]"])
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert 0 < metrics["validation/mse"] < 1


def test_teacher_forcing_needs_a_causal_network(tiny: list[str], tmp_path: Path) -> None:
    from utils.typed_config import ConfigError

    cfg = compose_config([*tiny, "algorithm.noise_level=teacher_forcing", "algorithm.causal=false"], tmp_path / "r")
    with pytest.raises(ConfigError, match="algorithm.noise_level: teacher_forcing needs algorithm.causal=true"):
        build(DFVideoConfig, cfg.algorithm, "algorithm")
