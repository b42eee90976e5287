"""Frame metrics on known inputs: identical videos score perfectly, noise makes every score worse."""

from pathlib import Path
from unittest.mock import patch

import pytest
import torch

from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from algorithms.diffusion_forcing.sampling import Sampler
from tests.conftest import compose_config
from utils.typed_config import build
from utils.video_metrics import frame_metrics, per_frame_errors


def videos() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    truth = torch.rand(2, 6, 3, 16, 16)
    noisy = (truth + 0.1 * torch.randn_like(truth) * torch.linspace(0, 1, 6)[None, :, None, None, None]).clamp(0, 1)
    return truth, noisy


def test_identical_videos_are_perfect() -> None:
    truth, _ = videos()
    metrics = frame_metrics(truth, truth)
    assert metrics["mse"] == 0 and metrics["ssim"] > 0.999 and metrics["psnr"] == 100


def test_noisy_copy_scores_worse() -> None:
    truth, noisy = videos()
    metrics = frame_metrics(noisy, truth)
    assert 0 < metrics["mse"] < 0.01 and metrics["ssim"] < 0.99 and 15 < metrics["psnr"] < 40


def test_per_frame_errors_grow_with_the_noise() -> None:
    truth, noisy = videos()
    errors = per_frame_errors(noisy, truth)
    assert errors["mse"].shape == errors["psnr"].shape == (6,)
    mse = errors["mse"] / 2
    assert mse[0] == 0 and torch.all(mse[1:] > 0) and torch.all(mse[2:] > mse[1:-1])
    assert torch.all(errors["psnr"][2:] < errors["psnr"][1:-1])
    torch.testing.assert_close(mse.mean(), frame_metrics(noisy, truth)["mse"])


@pytest.mark.parametrize("clamp", [False, True])
def test_clamp_frames_scores_the_rollout_as_written_images(clamp: bool, tiny: list[str], tmp_path: Path) -> None:
    """A rollout that undershoots black (values below the pixel range, which no video shows) is scored on its
    raw values by default (DF v1.5) and on the clamped pixels with `algorithm.clamp_frames=true`."""
    cfg = compose_config([*tiny, f"algorithm.clamp_frames={clamp}"], tmp_path / "run")
    algorithm = DiffusionForcingVideo(build(DFVideoConfig, cfg.algorithm, "algorithm"))
    truth = torch.full((1, 4, 3, 16, 16), -1.0)
    truth[..., :8] = 1.0
    undershoot = truth.clone()
    undershoot[:, 2:, :, :, 8:] = -1.2  # black drawn 0.1 below 0 in pixel units
    logged = {}
    with patch.object(Sampler, "rollout", lambda self, *args, **kwargs: undershoot):
        algorithm.log_dict = lambda values, **kwargs: logged.update(values)
        algorithm._evaluate({"videos": truth, "actions": torch.zeros(1, 4, 17)}, 0, "validation")
    if clamp:
        assert logged["validation/mse"] == pytest.approx(0.0) and logged["validation/ssim"] == pytest.approx(1.0)
    else:
        assert logged["validation/mse"] == pytest.approx(0.1**2 / 2) and logged["validation/ssim"] < 0.6
