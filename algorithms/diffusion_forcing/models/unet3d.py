"""The video backbone: a U-Net whose convolutions and spatial attention act per frame and whose temporal
attention mixes frames (causally by default), every frame conditioned on its own noise level and action."""

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from utils.typed_config import require

from .attention import SpatialAttention, TemporalAttention
from .embeddings import NoiseLevelEmbedding
from .kv_cache import TemporalKVCache
from .resnet import Downsample, ResnetBlock, Upsample, group_norm


@dataclass(frozen=True)
class UNet3DConfig:
    """The original's `algorithm.diffusion.architecture.*` keys."""

    network_size: int = 64
    attn_heads: int = 4
    attn_dim_head: int = 64
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    resolution: int = 128
    attn_resolutions: tuple[int, ...] = (16, 32, 64, 128)
    use_init_temporal_attn: bool = True

    def __post_init__(self) -> None:
        require(
            self.network_size > 0 and self.network_size % 8 == 0,
            "network_size",
            f"must be a positive multiple of 8 (GroupNorm groups), got {self.network_size}",
        )
        require(self.attn_heads > 0, "attn_heads", f"must be > 0, got {self.attn_heads}")
        require(self.attn_dim_head > 0 and self.attn_dim_head % 2 == 0, "attn_dim_head", "must be even and > 0")
        require(len(self.dim_mults) > 0 and min(self.dim_mults) > 0, "dim_mults", "must be positive, e.g. [1,2,4]")
        factor = 2 ** (len(self.dim_mults) - 1)
        require(
            self.resolution % factor == 0,
            "resolution",
            f"{self.resolution} is not divisible by 2^(len(dim_mults)-1) = {factor}",
        )
        levels = self.level_resolutions
        unrelated = [r for r in self.attn_resolutions if r <= 0 or not math.log2(r / self.resolution).is_integer()]
        require(
            not unrelated and (not self.attn_resolutions or any(r in levels for r in self.attn_resolutions)),
            "attn_resolutions",
            f"{list(self.attn_resolutions)} do not fit this U-Net at resolution {self.resolution}; its feature maps "
            f"are {list(levels)} (sizes above the resolution are allowed and skipped, so recipes carry across data)",
        )

    @property
    def level_resolutions(self) -> tuple[int, ...]:
        return tuple(self.resolution // 2**i for i in range(len(self.dim_mults)))


class UNetLevel(nn.Module):
    """Two ResNet blocks, optional spatial attention, then temporal attention, all at one resolution."""

    def __init__(self, dim_in: int, dim_out: int, emb_dim: int, config: UNet3DConfig, spatial: bool, causal: bool):
        super().__init__()
        heads, dim_head = config.attn_heads, config.attn_dim_head
        self.res1 = ResnetBlock(dim_in, dim_out, emb_dim)
        self.res2 = ResnetBlock(dim_out, dim_out, emb_dim)
        self.spatial = SpatialAttention(dim_out, heads, dim_head) if spatial else None
        self.temporal = TemporalAttention(dim_out, heads, dim_head, causal)

    def forward(
        self, x: Tensor, emb: Tensor, n_frames: int, positions: Tensor, cache: TemporalKVCache | None
    ) -> Tensor:
        x = self.res2(self.res1(x, emb), emb)
        if self.spatial is not None:
            x = self.spatial(x, n_frames)
        return self.temporal(x, n_frames, positions, cache)


class UNet3D(nn.Module):
    """ε/x₀/v predictor for a clip: (B, T, C, H, W) frames with per-frame levels (B, T) → (B, T, C, H, W)."""

    def __init__(self, config: UNet3DConfig, channels: int, external_cond_dim: int, causal: bool) -> None:
        super().__init__()
        self.config = config
        dims = [config.network_size * m for m in config.dim_mults]
        emb_dim = config.network_size * 4
        resolutions = config.level_resolutions
        self.noise_embedding = NoiseLevelEmbedding(config.network_size, emb_dim)
        self.cond_embedding = nn.Linear(external_cond_dim, emb_dim) if external_cond_dim else None
        self.init_conv = nn.Conv2d(channels, dims[0], 7, padding=3)
        self.init_temporal = (
            TemporalAttention(dims[0], config.attn_heads, config.attn_dim_head, causal)
            if config.use_init_temporal_attn
            else None
        )
        self.downs = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        for i, dim in enumerate(dims):
            spatial = resolutions[i] in config.attn_resolutions
            self.downs.append(UNetLevel(dims[max(i - 1, 0)], dim, emb_dim, config, spatial, causal))
            self.downsamples.append(Downsample(dim, dim) if i < len(dims) - 1 else nn.Identity())
        self.mid = UNetLevel(dims[-1], dims[-1], emb_dim, config, spatial=True, causal=causal)
        self.ups = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i in reversed(range(len(dims))):
            spatial = resolutions[i] in config.attn_resolutions
            self.ups.append(UNetLevel(dims[i] * 2, dims[i], emb_dim, config, spatial, causal))
            self.upsamples.append(Upsample(dims[i], dims[i - 1]) if i > 0 else nn.Identity())
        self.out = nn.Sequential(group_norm(dims[0]), nn.SiLU(), nn.Conv2d(dims[0], channels, 3, padding=1))

    def forward(
        self,
        x: Tensor,
        noise_levels: Tensor,
        external_cond: Tensor | None = None,
        positions: Tensor | None = None,
        cache: TemporalKVCache | None = None,
    ) -> Tensor:
        # x: (B, T, C, H, W); noise_levels: (B, T); external_cond: (B, T, D); positions: (T,) frame indices.
        # With a cache, x holds only the frames after the cached ones, and positions are absolute.
        n_frames = x.shape[1]
        if positions is None:
            positions = torch.arange(n_frames, device=x.device)
        emb = self.noise_embedding(noise_levels)
        if self.cond_embedding is not None:
            if external_cond is None:
                raise ValueError("this network was built with external_cond_dim > 0 and needs external_cond")
            emb = emb + self.cond_embedding(external_cond)
        emb = rearrange(emb, "b t e -> (b t) e")
        h = self.init_conv(rearrange(x, "b t c h w -> (b t) c h w"))
        if self.init_temporal is not None:
            h = self.init_temporal(h, n_frames, positions, cache)
        skips = []
        for level, downsample in zip(self.downs, self.downsamples, strict=True):
            h = level(h, emb, n_frames, positions, cache)
            skips.append(h)
            h = downsample(h)
        h = self.mid(h, emb, n_frames, positions, cache)
        for level, upsample in zip(self.ups, self.upsamples, strict=True):
            h = level(torch.cat([h, skips.pop()], dim=1), emb, n_frames, positions, cache)
            h = upsample(h)
        return rearrange(self.out(h), "(b t) c h w -> b t c h w", t=n_frames)
