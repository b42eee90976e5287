"""LPIPS (Zhang et al. 2018) with an AlexNet trunk, written here so no torchvision is needed.

The trunk takes torchvision's AlexNet weights (`features.*` keys of `alexnet-owt-7be5be79.pth`); the per-layer
linear heads are LPIPS v0.1's `alex.pth`, which ships inside the torchmetrics wheel. Distance between images in
[-1, 1] (smaller than 64² are upsampled first): per tapped layer, unit-normalise the features over channels,
square their difference, weight the channels by the linear head, average over space, and sum over layers.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

LINEAR_HEADS = Path(torchmetrics.__file__).parent / "functional" / "image" / "lpips_models" / "alex.pth"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
MIN_SIZE = 64


class AlexNetLPIPS(nn.Module):
    """Perceptual distance (N,) between two image batches (N, 3, H, W) in [-1, 1]; 0 for identical images."""

    def __init__(self, trunk_weights: Path, heads: Path = LINEAR_HEADS) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
        )
        self.taps = (1, 4, 7, 9, 11)  # ReLU outputs compared by LPIPS
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 192, 384, 256, 256))
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None], persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None], persistent=False)
        trunk = torch.load(trunk_weights, map_location="cpu", weights_only=True)
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in trunk.items() if "features." in k})
        linear = torch.load(heads, map_location="cpu", weights_only=True)
        for i, head in enumerate(self.heads):
            head.weight.data.copy_(linear[f"lin{i}.model.1.weight"])
        self.eval().requires_grad_(False)

    def tapped(self, x: Tensor) -> list[Tensor]:
        x = (x - self.shift) / self.scale
        outputs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outputs.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
        return outputs

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if min(a.shape[-2:]) < MIN_SIZE:  # AlexNet's pooling needs at least this much image
            a, b = (F.interpolate(x, size=MIN_SIZE, mode="bilinear", align_corners=False) for x in (a, b))
        distance = torch.zeros(a.shape[0], device=a.device)
        for head, fa, fb in zip(self.heads, self.tapped(a), self.tapped(b), strict=True):
            distance = distance + head((fa - fb).square()).mean(dim=(1, 2, 3))
        return distance
