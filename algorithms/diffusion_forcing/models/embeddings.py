"""Embeddings of noise levels (sinusoidal + MLP) and of frame positions (rotary, Su et al. 2021).

The sinusoidal variants follow DF v1.5 exactly, so its checkpoints produce the same features: the video U-Net
uses DDPM's timestep features (frequencies 10000^(-i/half), cosines first), the planner transformer the
"SinusoidalPosEmb" form (frequencies 10000^(-i/(half-1)), sines first).
"""

import math

import torch
from torch import Tensor, nn


class SinusoidalEmbedding(nn.Module):
    """Maps scalars (...) to (..., dim) features at geometric frequencies 10000^(-i / (half - shift))."""

    def __init__(self, dim: int, cos_first: bool = False, frequency_shift: int = 1) -> None:
        super().__init__()
        half = dim // 2
        exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / max(half - frequency_shift, 1)
        self.register_buffer("freqs", torch.exp(exponent), persistent=False)
        self.cos_first = cos_first

    def forward(self, x: Tensor) -> Tensor:
        angles = x.float()[..., None] * self.freqs
        parts = (angles.cos(), angles.sin()) if self.cos_first else (angles.sin(), angles.cos())
        return torch.cat(parts, dim=-1)


class NoiseLevelEmbedding(nn.Module):
    """Per-frame noise level k (B, T) → embedding (B, T, dim) that modulates every ResNet block of the U-Net."""

    def __init__(self, base_dim: int, dim: int) -> None:
        super().__init__()
        self.features = SinusoidalEmbedding(base_dim, cos_first=True, frequency_shift=0)
        self.linear_1 = nn.Linear(base_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, k: Tensor) -> Tensor:
        return self.linear_2(nn.functional.silu(self.linear_1(self.features(k))))


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the head dimension, applied to queries and keys by absolute position.

    Positions are passed explicitly so that keys computed earlier (a key/value cache) keep their rotation.
    Channels (2i, 2i+1) form one pair rotated by position·θ_i with θ_i = 10000^(-2i/dim), as in DF v1.5.
    """

    def __init__(self, dim_head: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer(
            "inv_freq", 1.0 / base ** (torch.arange(0, dim_head, 2).float() / dim_head), persistent=False
        )

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        # x: (..., T, D); positions: (T,). Each pair (x_2i, x_2i+1) is one complex number, rotated by the angle
        # position·θ_i: a single complex multiply instead of slicing, four real multiplies and a stack.
        angles = positions.float()[:, None] * self.inv_freq
        rotation = torch.polar(torch.ones_like(angles), angles)
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(pairs * rotation).flatten(-2).to(x.dtype)
