"""Spatial attention within a frame and temporal attention across frames at each pixel."""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .embeddings import RotaryEmbedding
from .kv_cache import TemporalKVCache


class MultiHeadAttention(nn.Module):
    """Pre-norm self-attention over a token axis with a zero-initialised output projection."""

    def __init__(self, dim: int, heads: int, dim_head: int, rotary: bool = False) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)
        self.rotary = RotaryEmbedding(dim_head) if rotary else None

    def project(self, x: Tensor, positions: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values (B, heads, N, dim_head), rotated by `positions` when rotary."""
        qkv = self.to_qkv(self.norm(x))
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.heads)
        if self.rotary is not None:
            q, k = self.rotary(q, positions), self.rotary(k, positions)
        return q, k, v

    def attend(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return x + self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class SpatialAttention(MultiHeadAttention):
    """Attention among the H·W positions of each frame independently."""

    def forward(self, x: Tensor, n_frames: int) -> Tensor:
        # x: (B*T, C, H, W)
        height = x.shape[-2]
        tokens = rearrange(x, "bt c h w -> bt (h w) c")
        q, k, v = self.project(tokens, None)
        tokens = self.attend(tokens, q, k, v, None)
        return rearrange(tokens, "bt (h w) c -> bt c h w", h=height)


class TemporalAttention(MultiHeadAttention):
    """Attention among the frames at each pixel, with rotary frame positions; causal masks the future.

    The mask is built from query and key *positions*, not tensor indices, so keys and values of earlier frames
    may come from a `TemporalKVCache` and still be masked and rotated consistently.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, causal: bool) -> None:
        super().__init__(dim, heads, dim_head, rotary=True)
        self.causal = causal

    def forward(
        self,
        x: Tensor,
        n_frames: int,
        positions: Tensor | None = None,
        cache: TemporalKVCache | None = None,
    ) -> Tensor:
        # x: (B*T, C, H, W); positions: (T,) absolute frame indices
        height, width = x.shape[-2:]
        if positions is None:
            positions = torch.arange(n_frames, device=x.device)
        tokens = rearrange(x, "(b t) c h w -> (b h w) t c", t=n_frames)
        q, k, v = self.project(tokens, positions)
        key_positions = positions
        if cache is not None:
            k, v, key_positions = cache.extend(self, k, v, positions)
        mask = key_positions[None, :] <= positions[:, None] if self.causal else None
        tokens = self.attend(tokens, q, k, v, mask)
        return rearrange(tokens, "(b h w) t c -> (b t) c h w", h=height, w=width)
