"""The video backbone: DF v1.5's U-Net, whose convolutions and spatial attention act per frame and whose temporal
attention mixes frames (causally by default), every frame conditioned on its own noise level (and, as an option
of this project, its action)."""

import math
from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from utils.typed_config import require

from .attention import SpatialAttention, TemporalAttention
from .embeddings import NoiseLevelEmbedding
from .kv_cache import TemporalKVCache
from .resnet import GROUPS, Downsample, ResnetBlock, Upsample


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
    use_linear_attn: bool = True
    time_emb_type: Literal["rotary"] = "rotary"  # DF v1.5's key; its sinusoidal alternative is not offered
    frame_wise_norm: bool = False
    use_checkpointing: tuple[bool, ...] = ()  # per level (as dim_mults): recompute its activations in backward

    def __post_init__(self) -> None:
        require(
            self.network_size > 0 and self.network_size % GROUPS == 0,
            "network_size",
            f"must be a positive multiple of {GROUPS} (GroupNorm groups), got {self.network_size}",
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
        require(
            len(self.use_checkpointing) in (0, len(self.dim_mults)),
            "use_checkpointing",
            f"needs one flag per level of dim_mults ({len(self.dim_mults)}), got {list(self.use_checkpointing)}",
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

    @property
    def attended_levels(self) -> tuple[bool, ...]:
        """Which levels have spatial and temporal attention: feature maps of a size in `attn_resolutions`."""
        return tuple(r in self.attn_resolutions for r in self.level_resolutions)

    @property
    def checkpointed_levels(self) -> tuple[bool, ...]:
        return self.use_checkpointing or (False,) * len(self.dim_mults)


@dataclass(frozen=True)
class LevelAttention:
    """How one level's attention blocks are built: linear or softmax spatial attention, causal temporal."""

    heads: int
    dim_head: int
    linear: bool
    causal: bool

    def spatial(self, dim: int) -> SpatialAttention:
        return SpatialAttention(dim, self.heads, self.dim_head, self.linear)

    def temporal(self, dim: int) -> TemporalAttention:
        return TemporalAttention(dim, self.heads, self.dim_head, self.causal)


class UNetLevel(nn.Module):
    """Two ResNet blocks, then (at attention resolutions) spatial and temporal attention, at one resolution."""

    def __init__(
        self, dim_in: int, dim_out: int, emb_dim: int, frame_wise_norm: bool, attention: LevelAttention | None
    ) -> None:
        super().__init__()
        self.res1 = ResnetBlock(dim_in, dim_out, emb_dim, frame_wise_norm)
        self.res2 = ResnetBlock(dim_out, dim_out, emb_dim, frame_wise_norm)
        self.spatial = attention.spatial(dim_out) if attention else None
        self.temporal = attention.temporal(dim_out) if attention else None

    def forward(
        self, x: Tensor, emb: Tensor, n_frames: int, positions: Tensor, cache: TemporalKVCache | None
    ) -> Tensor:
        x = self.res2(self.res1(x, emb, n_frames), emb, n_frames)
        if self.spatial is None:
            return x
        return self.temporal(self.spatial(x), n_frames, positions, cache)


class MidBlock(nn.Module):
    """At the lowest resolution: ResNet, full spatial attention, temporal attention, ResNet."""

    def __init__(self, dim: int, emb_dim: int, frame_wise_norm: bool, attention: LevelAttention) -> None:
        super().__init__()
        self.res1 = ResnetBlock(dim, dim, emb_dim, frame_wise_norm)
        self.spatial = attention.spatial(dim)
        self.temporal = attention.temporal(dim)
        self.res2 = ResnetBlock(dim, dim, emb_dim, frame_wise_norm)

    def forward(
        self, x: Tensor, emb: Tensor, n_frames: int, positions: Tensor, cache: TemporalKVCache | None
    ) -> Tensor:
        x = self.spatial(self.res1(x, emb, n_frames))
        return self.res2(self.temporal(x, n_frames, positions, cache), emb, n_frames)


class UNet3D(nn.Module):
    """ε/x₀/v predictor for a clip: (B, T, C, H, W) frames with per-frame levels (B, T) → (B, T, C, H, W).

    DF v1.5's U-Net: `dims = [size, size·m for m in dim_mults]`; down level i maps dims[i] → dims[i+1] and halves
    the resolution (but the last); levels at `attn_resolutions` add spatial attention (linear, but softmax at the
    lowest level) and temporal attention; the middle block has both, softmax; up levels mirror the down levels;
    the output block sees the up path concatenated with the first convolution's features.
    """

    def __init__(self, config: UNet3DConfig, channels: int, external_cond_dim: int, causal: bool) -> None:
        super().__init__()
        self.config = config
        size = config.network_size
        dims = [size, *(size * m for m in config.dim_mults)]
        emb_dim = size * 4
        n_levels = len(config.dim_mults)
        attended = config.attended_levels
        frame_wise = config.frame_wise_norm

        def attention(level: int, softmax: bool) -> LevelAttention | None:
            linear = config.use_linear_attn and not softmax
            return LevelAttention(config.attn_heads, config.attn_dim_head, linear, causal) if attended[level] else None

        self.noise_embedding = NoiseLevelEmbedding(size, emb_dim)
        self.cond_embedding = nn.Linear(external_cond_dim, emb_dim) if external_cond_dim else None
        self.init_conv = nn.Conv2d(channels, size, 7, padding=3)
        self.init_temporal = (
            TemporalAttention(size, config.attn_heads, config.attn_dim_head, causal)
            if config.use_init_temporal_attn
            else None
        )
        self.downs = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        for i in range(n_levels):
            last = i == n_levels - 1
            self.downs.append(UNetLevel(dims[i], dims[i + 1], emb_dim, frame_wise, attention(i, softmax=last)))
            self.downsamples.append(nn.Identity() if last else Downsample(dims[i + 1]))
        mid_attention = LevelAttention(config.attn_heads, config.attn_dim_head, False, causal)
        self.mid = MidBlock(dims[-1], emb_dim, frame_wise, mid_attention)
        self.ups = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i in reversed(range(n_levels)):
            first = i == n_levels - 1
            self.ups.append(UNetLevel(dims[i + 1] * 2, dims[i], emb_dim, frame_wise, attention(i, softmax=first)))
            self.upsamples.append(nn.Identity() if i == 0 else Upsample(dims[i]))
        self.out_res = ResnetBlock(size * 2, size, None, frame_wise)
        self.out_conv = nn.Conv2d(size, channels, 1)
        self.checkpointed = config.checkpointed_levels

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
        x = self.init_conv(rearrange(x, "b t c h w -> (b t) c h w"))
        if self.init_temporal is not None:
            x = self.init_temporal(x, n_frames, positions, cache)
        h, skips = x, []
        for level, downsample, saved in zip(self.downs, self.downsamples, self.checkpointed, strict=True):
            h = self._run(level, saved, h, emb, n_frames, positions, cache)
            skips.append(h)
            h = downsample(h)
        h = self.mid(h, emb, n_frames, positions, cache)
        for level, upsample, saved in zip(self.ups, self.upsamples, reversed(self.checkpointed), strict=True):
            h = upsample(self._run(level, saved, torch.cat([h, skips.pop()], dim=1), emb, n_frames, positions, cache))
        out = self.out_conv(self.out_res(torch.cat([h, x], dim=1), None, n_frames))
        return rearrange(out, "(b t) c h w -> b t c h w", t=n_frames)

    @staticmethod
    def _run(level: UNetLevel, checkpointed: bool, h: Tensor, *args) -> Tensor:
        """One level; with activation checkpointing (training only) its activations are recomputed in backward
        instead of kept, trading one extra forward pass of the level for its memory."""
        if checkpointed and torch.is_grad_enabled():
            return checkpoint(level, h, *args, use_reentrant=False)
        return level(h, *args)
