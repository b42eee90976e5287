"""The planning backbone: a transformer over tokens of stacked states, each token with its own noise level.

Non-causal by default (DF v1.5): causality comes from the noise levels (future tokens noisier), and padded
positions beyond the planning horizon are declared pure noise.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from utils.typed_config import require

from .attention import softmax_attention
from .embeddings import SinusoidalEmbedding


@dataclass(frozen=True)
class TransformerConfig:
    """`algorithm.diffusion.architecture.*` of `df_planning`."""

    network_size: int = 128  # model width
    num_layers: int = 12
    attn_heads: int = 4
    dim_feedforward: int = 512

    def __post_init__(self) -> None:
        require(
            self.network_size > 0 and self.network_size % 4 == 0,
            "network_size",
            f"must be a positive multiple of 4 (its noise-level features are half as wide), got {self.network_size}",
        )
        require(self.num_layers >= 1, "num_layers", f"must be >= 1, got {self.num_layers}")
        require(
            self.attn_heads >= 1 and self.network_size % self.attn_heads == 0,
            "attn_heads",
            f"must divide network_size={self.network_size}, got {self.attn_heads}",
        )
        require(self.dim_feedforward >= 1, "dim_feedforward", f"must be >= 1, got {self.dim_feedforward}")


class EncoderLayer(nn.TransformerEncoderLayer):
    """PyTorch's post-norm encoder layer (same parameters, initialisation and inference fast path), its
    self-attention computed from the same projections without `nn.MultiheadAttention`'s call: no transposes
    of batch-first tokens, and `softmax_attention`'s fast path under bf16 autocast on a CPU.

    Overrides torch's `_sa_block(x, attn_mask, key_padding_mask, is_causal)` (torch is pinned); exact for what
    the planner builds — no attention dropout, a 2-D mask whenever it is causal — which
    `tests/test_original_checkpoints.py` checks against DF v1.5's outputs with gradients on (the path this runs).
    """

    def _sa_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool = False
    ) -> Tensor:
        if key_padding_mask is not None:
            raise ValueError("the planner pads by noise level, not by a key padding mask")
        attention = self.self_attn
        qkv = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=attention.num_heads)
        attended = rearrange(softmax_attention(q, k, v, attn_mask), "b h n d -> b n (h d)")
        return self.dropout1(attention.out_proj(attended))


class PlanningTransformer(nn.Module):
    """(x (B, T, D), k (B, T), cond, positions (T,)) → prediction (B, T, D); DF v1.5's planner network.

    A token and its noise level's sinusoidal features (width/2) go through an MLP to the model width, plus the
    sinusoidal features of the token's position; then a post-norm ReLU transformer encoder and a linear read-out.
    Module names are the original's, so its weights load as they are.
    """

    def __init__(self, config: TransformerConfig, token_dim: int, causal: bool) -> None:
        super().__init__()
        width = config.network_size
        self.causal = causal
        self.k_embed = SinusoidalEmbedding(width // 2)
        self.t_embed = SinusoidalEmbedding(width)
        self.init_mlp = nn.Sequential(nn.Linear(token_dim + width // 2, width), nn.ReLU(), nn.Linear(width, width))
        layer = EncoderLayer(width, config.attn_heads, config.dim_feedforward, dropout=0.0, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, token_dim)

    def forward(self, x: Tensor, k: Tensor, cond: Tensor | None = None, positions: Tensor | None = None) -> Tensor:
        tokens = x.shape[1]
        positions = torch.arange(tokens, device=x.device) if positions is None else positions
        h = self.init_mlp(torch.cat([x, self.k_embed(k)], dim=-1)) + self.t_embed(positions)
        mask = nn.Transformer.generate_square_subsequent_mask(tokens, device=x.device) if self.causal else None
        return self.out(self.transformer(h, mask=mask, is_causal=self.causal))
