"""Frame metrics on known inputs: identical videos score perfectly, noise makes every score worse."""

import torch

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
