"""Embeddings of noise levels (sinusoidal + MLP) and of frame positions (rotary, Su et al. 2021)."""

import math

import torch
from torch import Tensor, nn


class SinusoidalEmbedding(nn.Module):
    """Maps a batch of scalars (..., ) to (..., dim) sin/cos features at geometric frequencies."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        self.register_buffer(
            "freqs", torch.exp(-math.log(10000) * torch.arange(half) / max(half - 1, 1)), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        angles = x.float()[..., None] * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class NoiseLevelEmbedding(nn.Module):
    """Per-token noise level k (B, T) → embedding (B, T, dim) conditioning every ResNet block."""

    def __init__(self, base_dim: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            SinusoidalEmbedding(base_dim), nn.Linear(base_dim, dim), nn.SiLU(), nn.Linear(dim, dim)
        )

    def forward(self, k: Tensor) -> Tensor:
        return self.net(k)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the head dimension, applied to queries and keys by absolute position.

    Positions are passed explicitly so that keys computed earlier (a key/value cache) keep their rotation.
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
