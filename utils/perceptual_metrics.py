"""Distribution and perceptual video metrics: FVD (I3D), FID (Inception) and LPIPS (AlexNet).

Each needs pretrained weights, found by `utils/pretrained.py`: a local file from the config, else a download into
`cache_dir`. When neither works, that metric is skipped with one logged line saying how to enable it — never a
crash and never a value from the wrong network. The detectors are the TorchScript networks the video-generation
literature uses: StyleGAN-V's `i3d_torchscript.pt` for FVD (clips of at least `I3D_MIN_FRAMES` frames) and
StyleGAN3's `inception-2015-12-05.pkl` for FID; LPIPS uses `utils/lpips.py`.

Videos are accumulated over the validation batches: FVD compares whole clips (context included), FID every
frame, LPIPS averages the distance between each generated frame and the true one.
"""

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from einops import rearrange
from torch import Tensor, nn

from utils.frechet import frechet_distance
from utils.lpips import AlexNetLPIPS
from utils.pretrained import resolve_weights
from utils.typed_config import ConfigError

log = logging.getLogger(__name__)

PerceptualMetric = Literal["fvd", "fid", "lpips"]
PERCEPTUAL_METRICS: tuple[str, ...] = get_args(PerceptualMetric)
I3D_MIN_FRAMES = 10
I3D_URL = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1"
INCEPTION_URL = (
    "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl"
)
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"


@dataclass(frozen=True)
class MetricWeightsConfig:
    """`algorithm.metric_weights.*`: where each metric's network comes from (a local file or a URL to cache)."""

    cache_dir: str = "~/.cache/diffusion_forcing"
    fvd: str = I3D_URL
    fid: str = INCEPTION_URL
    lpips: str = ALEXNET_URL


def load_detector(path: Path) -> nn.Module:
    """A TorchScript network saved with `torch.jit.save`, or pickled (StyleGAN's `.pkl` files)."""
    if path.suffix == ".pkl":
        with path.open("rb") as file:
            return pickle.load(file)
    return torch.jit.load(str(path), map_location="cpu")


class PerceptualMetrics:
    """Accumulate (generated, true) videos with `update`, then `compute` the metrics whose weights were found."""

    def __init__(self, metrics: tuple[PerceptualMetric, ...], weights: MetricWeightsConfig) -> None:
        self.metrics = metrics
        self.weights = weights
        self.networks: dict[str, nn.Module] = {}
        self.skipped: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        self.features: dict[str, list[Tensor]] = {"fvd_fake": [], "fvd_real": [], "fid_fake": [], "fid_real": []}
        self.lpips_sum, self.lpips_count = 0.0, 0

    def network(self, name: str, device: torch.device) -> nn.Module | None:
        """The metric's network on `device`, loaded on first use; None (logged once) when unavailable."""
        if name in self.skipped or name not in self.metrics:
            return None
        if name not in self.networks:
            key = f"algorithm.metric_weights.{name}"
            try:
                path = resolve_weights(key, getattr(self.weights, name), Path(self.weights.cache_dir))
                self.networks[name] = AlexNetLPIPS(path) if name == "lpips" else load_detector(path)
            except (ConfigError, RuntimeError, OSError, pickle.UnpicklingError) as error:
                self.skip(name, f"{error}; set {key} to a local weights file or a reachable URL to enable it")
                return None
        return self.networks[name].to(device)

    def skip(self, name: str, reason: str) -> None:
        if name not in self.skipped:
            self.skipped[name] = reason
            log.warning("%s skipped: %s", name.upper(), reason)

    @torch.no_grad()
    def update(self, generated: Tensor, truth: Tensor) -> None:
        """Add a batch of whole clips (B, T, 3, H, W) in [0, 1]; `generated` holds the context frames too."""
        device = generated.device
        if (i3d := self.network("fvd", device)) is not None:
            if generated.shape[1] < I3D_MIN_FRAMES:
                self.skip("fvd", f"clips have {generated.shape[1]} frames, I3D needs at least {I3D_MIN_FRAMES}")
            else:
                for kind, video in (("fake", generated), ("real", truth)):
                    clip = rearrange(video.float() * 255, "b t c h w -> b c t h w")
                    features = i3d(clip, rescale=True, resize=True, return_features=True)
                    self.features[f"fvd_{kind}"].append(features.cpu())
        if (inception := self.network("fid", device)) is not None:
            for kind, video in (("fake", generated), ("real", truth)):
                frames = (rearrange(video, "b t c h w -> (b t) c h w") * 255).round().to(torch.uint8)
                self.features[f"fid_{kind}"].append(inception(frames, return_features=True).cpu())
        if (lpips := self.network("lpips", device)) is not None:
            a, b = (rearrange(v.float(), "b t c h w -> (b t) c h w") * 2 - 1 for v in (generated, truth))
            distances = lpips(a, b)
            self.lpips_sum += float(distances.sum())
            self.lpips_count += len(distances)

    def compute(self) -> dict[str, float]:
        """The metrics computable from what was accumulated; then starts over."""
        results = {}
        for name in ("fvd", "fid"):
            fake, real = self.features[f"{name}_fake"], self.features[f"{name}_real"]
            if fake and sum(len(f) for f in fake) >= 2:
                results[name] = float(frechet_distance(torch.cat(fake), torch.cat(real)))
            elif fake:
                self.skip(name, "needs at least 2 samples; raise dataset.num_eval_videos")
        if self.lpips_count:
            results["lpips"] = self.lpips_sum / self.lpips_count
        self.reset()
        return results
