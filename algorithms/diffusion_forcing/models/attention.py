"""Spatial attention within a frame (softmax or linear) and temporal attention across frames at each pixel.

Every block is pre-norm and residual: x + out(attention(LayerNorm(x))), with queries, keys and values from one
bias-free projection laid out [q | k | v], heads inner (DF v1.5's layout, so its weights load as they are).
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .embeddings import RotaryEmbedding
from .kv_cache import TemporalKVCache


def softmax_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(q·kᵀ/√d)·v, fused — except under bf16 autocast on a CPU, where it is written out.

    There PyTorch's fused kernel is slow (torch 2.13 on an AVX-512 BF16 CPU, at the temporal attention's many
    short sequences: its backward pass takes 5× the fp32 kernel's; without gradients, a KV-cached pass runs 8 %
    faster written out), so the product is written out, all in bf16 as autocast's matmuls return it: the softmax
    computes in fp32 but keeps its output in bf16 (the precision its product with v reads anyway), which halves
    the memory traffic of the scores (the planner's 60-token windows: 1.5× faster than an fp32 softmax output,
    fwd+bwd). Masks as SDPA takes them (boolean: True attends; float: added); every query must see a key.
    """
    cpu_bf16 = q.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    if not (cpu_bf16 and torch.get_autocast_dtype("cpu") == torch.bfloat16):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:  # SDPA's two kinds: a boolean mask keeps True, a float mask is added
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return scores.softmax(dim=-1) @ v


class AttentionBlock(nn.Module):
    """The norm and projections shared by every attention block; subclasses say which tokens attend."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values (B, heads, N, dim_head) of tokens x (B, N, dim)."""
        q, k, v = rearrange(self.to_qkv(self.norm(x)), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        return q, k, v

    def output(self, x: Tensor, attended: Tensor) -> Tensor:
        return x + self.to_out(rearrange(attended, "b h n d -> b n (h d)"))


class SpatialAttention(AttentionBlock):
    """Attention among the H·W positions of each frame independently.

    `linear=True` is the linear attention of Shen et al. (2021) that DF v1.5 uses at every level but the lowest:
    queries are softmax-normalised over channels, keys over positions, and the keys' summary of the values
    (dim_head × dim_head per head) replaces the (H·W)² attention matrix.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, linear: bool) -> None:
        super().__init__(dim, heads, dim_head)
        self.linear = linear
        self.scale = dim_head**-0.5

    def forward(self, x: Tensor) -> Tensor:
        # x: (B*T, C, H, W)
        height = x.shape[-2]
        tokens = rearrange(x, "n c h w -> n (h w) c")
        q, k, v = self.project(tokens)
        if self.linear:
            q, k = q.softmax(dim=-1) * self.scale, k.softmax(dim=-2)
            attended = q @ (k.transpose(-2, -1) @ v)
        else:
            attended = softmax_attention(q, k, v)
        return rearrange(self.output(tokens, attended), "n (h w) c -> n c h w", h=height)


class TemporalAttention(AttentionBlock):
    """Attention among the frames at each pixel, with rotary frame positions; causal masks the future.

    The mask is built from query and key *positions*, not tensor indices, so keys and values of earlier frames
    may come from a `TemporalKVCache` and still be masked and rotated consistently.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, causal: bool) -> None:
        super().__init__(dim, heads, dim_head)
        self.rotary = RotaryEmbedding(dim_head)
        self.causal = causal

    def forward(self, x: Tensor, n_frames: int, positions: Tensor, cache: TemporalKVCache | None = None) -> Tensor:
        # x: (B*T, C, H, W); positions: (T,) absolute frame indices
        height, width = x.shape[-2:]
        tokens = rearrange(x, "(b t) c h w -> (b h w) t c", t=n_frames)
        q, k, v = self.project(tokens)
        q, k = self.rotary(q, positions), self.rotary(k, positions)
        key_positions = positions
        if cache is not None:
            k, v, key_positions = cache.extend(self, k, v, positions)
        mask = key_positions[None, :] <= positions[:, None] if self.causal else None
        attended = softmax_attention(q, k, v, mask)
        return rearrange(self.output(tokens, attended), "(b h w) t c -> (b t) c h w", h=height, w=width)
