"""2D ResNet blocks conditioned on a per-frame embedding, and resolution changes (DF v1.5's layout).

Convolutions act on each frame alone. GroupNorm does not, in DF v1.5: its U-Net normalises (B, C, T, H, W)
tensors, so a group's statistics pool every frame of the clip, future frames included. `ClipGroupNorm` keeps
that (`frame_wise=False`, the default, needed to reproduce DF v1.5's checkpoints) or, as this project's option,
pools each frame alone (`frame_wise=True`): then nothing but causal attention mixes frames, so a causal network
is strictly causal and its key/value cache exact.
"""

import torch
from torch import Tensor, nn
from torch.nn import functional as F

GROUPS = 8  # GroupNorm groups of every block (DF v1.5's `resnet_block_groups`)


class ClipGroupNorm(nn.GroupNorm):
    """GroupNorm of (B·T, C, H, W) frames whose statistics pool the T frames of each clip, or each frame alone."""

    def __init__(self, channels: int, frame_wise: bool) -> None:
        super().__init__(GROUPS, channels, eps=1e-6)
        self.frame_wise = frame_wise

    def forward(self, x: Tensor, n_frames: int = 1) -> Tensor:
        if self.frame_wise or n_frames == 1:
            return super().forward(x)
        # statistics in fp32 also under autocast, as nn.GroupNorm computes them; normalisation and affine are then
        # one per-channel scale and shift, applied in a single pass over the clip
        clips, channels = len(x) // n_frames, x.shape[1]
        frames = x.float().reshape(clips, n_frames, channels, -1)
        var, mean = torch.var_mean(frames.reshape(clips, n_frames, GROUPS, -1), dim=(1, 3), unbiased=False)
        per_channel = channels // GROUPS
        rstd = torch.rsqrt(var + self.eps).repeat_interleave(per_channel, dim=1)  # (clips, channels)
        scale = rstd * self.weight
        shift = self.bias - mean.repeat_interleave(per_channel, dim=1) * scale
        return torch.addcmul(shift[:, None, :, None], frames, scale[:, None, :, None]).reshape(x.shape).to(x.dtype)


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-Conv, then GroupNorm scaled and shifted by the noise-level embedding, SiLU-Conv; plus skip."""

    def __init__(self, dim_in: int, dim_out: int, emb_dim: int | None, frame_wise_norm: bool) -> None:
        super().__init__()
        self.norm1 = ClipGroupNorm(dim_in, frame_wise_norm)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.norm2 = ClipGroupNorm(dim_out, frame_wise_norm)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, dim_out * 2)) if emb_dim else None
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor | None, n_frames: int) -> Tensor:
        # x: (N, C, H, W) with N = B*T frames; emb: (N, emb_dim)
        h = self.norm2(self.conv1(F.silu(self.norm1(x, n_frames))), n_frames)
        if self.emb is not None:
            scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class Downsample(nn.Conv2d):
    """Halve H and W with a strided 3×3 convolution."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, dim, 3, stride=2, padding=1)


class Upsample(nn.Module):
    """Double H and W (nearest), then a 3×3 convolution."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
