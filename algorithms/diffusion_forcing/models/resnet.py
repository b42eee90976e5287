"""Per-frame 2D ResNet blocks conditioned on a per-frame embedding, and resolution changes."""

from torch import Tensor, nn


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice; the embedding sets a per-channel scale and shift between the convolutions."""

    def __init__(self, dim_in: int, dim_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = group_norm(dim_in)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, dim_out * 2))
        self.norm2 = group_norm(dim_out)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        # x: (N, C, H, W) with N = B*T frames; emb: (N, emb_dim)
        h = self.conv1(self.act(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.act(h))
        return h + self.skip(x)


class Downsample(nn.Conv2d):
    """Halve H and W with a strided convolution."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__(dim_in, dim_out, 4, stride=2, padding=1)


class Upsample(nn.Sequential):
    """Double H and W (nearest) then convolve."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dim_in, dim_out, 3, padding=1))
