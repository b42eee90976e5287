"""FVD, FID and LPIPS on known inputs with stand-in weights; weights from a path, a download, or skipped in one line."""

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from tests.archive_server import ArchiveServer
from utils.frechet import frechet_distance
from utils.perceptual_metrics import I3D_MIN_FRAMES, PERCEPTUAL_METRICS, MetricWeightsConfig, PerceptualMetrics

ALEXNET_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}


class StandInI3D(nn.Module):
    """Same call as StyleGAN-V's I3D TorchScript: clip statistics per channel as 'features'."""

    def forward(self, x: Tensor, rescale: bool, resize: bool, return_features: bool) -> Tensor:
        # x: (B, C, T, H, W) in [0, 255] when rescale
        if rescale:
            x = x / 127.5 - 1
        motion = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(2, 3, 4))
        return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4)), motion], dim=1)


class StandInInception(nn.Module):
    """Same call as StyleGAN3's Inception detector: uint8 images in, per-channel statistics out."""

    def forward(self, x: Tensor, return_features: bool) -> Tensor:
        x = x.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    torch.jit.save(torch.jit.script(StandInI3D()), folder / "i3d_torchscript.pt")
    torch.jit.save(torch.jit.script(StandInInception()), folder / "inception.pt")
    generator = torch.Generator().manual_seed(0)
    trunk = {"classifier.1.weight": torch.zeros(1)}  # torchvision's file also holds the classifier
    for index, (out, inp, k) in ALEXNET_CONVS.items():
        trunk[f"features.{index}.weight"] = torch.randn(out, inp, k, k, generator=generator) * math.sqrt(
            2 / (inp * k * k)
        )
        trunk[f"features.{index}.bias"] = torch.zeros(out)
    torch.save(trunk, folder / "alexnet-owt-7be5be79.pth")
    return {
        "fvd": folder / "i3d_torchscript.pt",
        "fid": folder / "inception.pt",
        "lpips": folder / "alexnet-owt-7be5be79.pth",
    }


def metrics(weights: dict[str, Path], tmp_path: Path, **overrides: str) -> PerceptualMetrics:
    paths = {name: str(path) for name, path in weights.items()}
    weights_config = MetricWeightsConfig(cache_dir=str(tmp_path / "cache"), **{**paths, **overrides})
    return PerceptualMetrics(PERCEPTUAL_METRICS, weights_config)


def clips(noise: float, frames: int = I3D_MIN_FRAMES, seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    truth = torch.rand(4, frames, 3, 32, 32, generator=generator)
    noisy = (truth + noise * torch.randn(truth.shape, generator=generator)).clamp(0, 1)
    return noisy, truth


def scores(m: PerceptualMetrics, noise: float, frames: int = I3D_MIN_FRAMES) -> dict[str, float]:
    for seed in range(2):
        m.update(*clips(noise, frames, seed))
    return m.compute()


def test_frechet_distance_of_shifted_gaussians() -> None:
    features = torch.randn(5000, 3, generator=torch.Generator().manual_seed(0))
    assert abs(float(frechet_distance(features, features))) < 1e-6
    shifted = features + torch.tensor([1.0, 2.0, 0.0])
    assert float(frechet_distance(shifted, features)) == pytest.approx(5.0, abs=1e-6)


def test_identical_videos_score_perfectly(weights: dict[str, Path], tmp_path: Path) -> None:
    result = scores(metrics(weights, tmp_path), noise=0.0)
    assert set(result) == {"fvd", "fid", "lpips"}
    assert abs(result["fvd"]) < 1e-6 and abs(result["fid"]) < 1e-6 and result["lpips"] == 0


def test_noisier_copies_score_worse(weights: dict[str, Path], tmp_path: Path) -> None:
    slightly, very = scores(metrics(weights, tmp_path), 0.05), scores(metrics(weights, tmp_path), 0.3)
    for name in ("fvd", "fid", "lpips"):
        assert 0 < slightly[name] < very[name], name


def test_weights_are_downloaded_once_into_the_cache(weights: dict[str, Path], tmp_path: Path) -> None:
    with ArchiveServer(weights["lpips"].parent) as server:
        url = f"{server.url}/alexnet-owt-7be5be79.pth"
        first = metrics(weights, tmp_path, lpips=url)
        assert "lpips" in scores(first, 0.1)
        assert (tmp_path / "cache" / "alexnet-owt-7be5be79.pth").is_file()
        assert "lpips" in scores(metrics(weights, tmp_path, lpips=url), 0.1)
        assert [path for path, _ in server.requests] == ["/alexnet-owt-7be5be79.pth"]


def test_missing_weights_skip_the_metric_with_one_line(
    weights: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = metrics(weights, tmp_path, fid=str(tmp_path / "nowhere.pkl"), fvd="http://127.0.0.1:9/i3d.pt")
    with caplog.at_level(logging.WARNING):
        result = scores(m, 0.1)
    assert set(result) == {"lpips"}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any(line.startswith("FID skipped: algorithm.metric_weights.fid: no weights file at") for line in lines)
    assert any("FVD skipped: algorithm.metric_weights.fvd: cannot download" in line for line in lines)
    assert all("to a local weights file or a reachable URL to enable it" in line for line in lines)


def test_fvd_is_skipped_below_the_i3d_minimum_length(
    weights: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        result = scores(metrics(weights, tmp_path), 0.1, frames=I3D_MIN_FRAMES - 1)
    assert set(result) == {"fid", "lpips"}
    assert [r.getMessage() for r in caplog.records] == [
        f"FVD skipped: clips have {I3D_MIN_FRAMES - 1} frames, I3D needs at least {I3D_MIN_FRAMES}"
    ]


def test_validation_logs_the_metrics(weights: dict[str, Path], tiny: list[str], run_main) -> None:
    overrides = [
        *tiny,
        "experiment.tasks=[validation]",
        "algorithm.metrics=[fid,lpips]",
        f"algorithm.metric_weights.fid={weights['fid']}",
        f"algorithm.metric_weights.lpips={weights['lpips']}",
        "dataset.num_eval_videos=2",
    ]
    run_dir = run_main(overrides)
    result = json.loads((run_dir / "validation_metrics.json").read_text())
    assert result["validation/fid"] > 0 and result["validation/lpips"] > 0
