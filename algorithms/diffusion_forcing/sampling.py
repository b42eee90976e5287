"""Diffusion Forcing sampling for every domain: denoise a window along a scheduling matrix, roll out by sliding.

Symbols follow the DF paper (Alg. 2): a window holds `n_context` context tokens, `horizon` new tokens and
optionally `padding` tokens (zeros labelled pure noise throughout: the planner's flexible horizon); row m of the
scheduling matrix gives every new token's sampling level at step m. Tokens at level 0 — context tokens
and new tokens already finished — are shown to the network at the stabilisation level k_s: rescaled to
sqrt(ᾱ_{k_s})·x with no noise drawn and labelled k_s, so small errors in generated frames are not taken as exact
(DF paper §3.4, "stabilisation"). The network is a callable (x, k, cond, positions[, cache]) → prediction.
Each step turns the prediction into estimates (x̂_0, ε̂) — changed by a `guidance` hook when given
(`guidance.py`), clipped to [-1, 1] with `clip_denoised` — then moves every token by DDIM to its next level.

With `kv_cache`, the leading frames of a window that sit at level 0 are run once and their temporal keys and
values kept (`models/kv_cache.py`); each step then runs only the frames after them. Under causal attention this
is exact within a window for every scheduling matrix. Across sliding windows the cache rolls: a context frame
keeps the keys/values it got while earlier frames (now outside the window) were visible, whereas recomputing
the window would show it only the frames still inside — so long rollouts differ slightly from `kv_cache=False`.
"""

from functools import partial
from typing import Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .guidance import Guidance
from .models.diffusion import Diffusion
from .models.kv_cache import TemporalKVCache
from .scheduling import SchedulingMatrix, scheduling_matrix


class Network(Protocol):
    def __call__(self, x: Tensor, noise_levels: Tensor, external_cond: Tensor | None, positions: Tensor) -> Tensor: ...


class Sampler:
    """Runs a trained network through scheduling matrices; holds no weights of its own."""

    def __init__(
        self,
        diffusion: Diffusion,
        network: Network,
        kind: SchedulingMatrix,
        window: int,
        chunk_size: int,
        uncertainty_scale: float,
        kv_cache: bool = False,
    ) -> None:
        self.diffusion = diffusion
        self.network = network
        self.kind = kind
        self.window = window
        self.chunk_size = chunk_size
        self.uncertainty_scale = uncertainty_scale
        self.kv_cache = kv_cache
        self.frame_passes = 0  # frames run through the network (per batch element), for benchmarks

    def level_matrix(self, n_context: int, horizon: int, device: torch.device, padding: int = 0) -> Tensor:
        """Sampling levels (M+1, n_context + horizon + padding): context 0, new per schedule, padding pure noise."""
        steps = self.diffusion.config.sampling_timesteps
        schedule = torch.as_tensor(scheduling_matrix(self.kind, horizon, steps, self.uncertainty_scale))
        context = torch.zeros(len(schedule), n_context, dtype=schedule.dtype)
        pure_noise = torch.full((len(schedule), padding), steps, dtype=schedule.dtype)
        return torch.cat([context, schedule, pure_noise], dim=1).to(device)

    @torch.no_grad()
    def sample_window(
        self,
        context: Tensor,
        horizon: int,
        external_cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        cache: TemporalKVCache | None = None,
        offset: int = 0,
        padding: int = 0,
        guidance: Guidance | None = None,
    ) -> Tensor:
        """New tokens (B, horizon, ...) following `context` (B, n_context, ...); cond covers the whole window.

        `offset` is the window's first absolute position; a `cache` must hold exactly the window's leading frames.
        `padding` zero tokens labelled pure noise follow the new ones; `guidance` changes every step's estimates.
        """
        if guidance is not None and cache is not None:
            raise ValueError("guidance differentiates through the whole window: sample it without a cache")
        batch, n_context = context.shape[:2]
        levels = self.level_matrix(n_context, horizon, context.device, padding)
        token_shape = context.shape[2:]
        noise = self.diffusion.clipped_noise((batch, horizon, *token_shape), context, generator)
        x = torch.cat([context, noise, context.new_zeros(batch, padding, *token_shape)], dim=1)
        positions = torch.arange(offset, offset + x.shape[1], device=x.device)
        to_timestep = self.diffusion.level_of_step
        estimate = partial(self.estimate, external_cond=external_cond, positions=positions, cache=cache)
        for m in range(len(levels) - 1):
            k_from = to_timestep[levels[m]].expand(batch, -1)
            k_to = to_timestep[levels[m + 1]].expand(batch, -1)
            x0, _ = estimate(x, k_from) if guidance is None else guidance(x, k_from, k_to, estimate)
            if self.diffusion.config.clip_denoised:
                x0 = x0.clamp(-1, 1)
            x = self.diffusion.ddim_update(x, x0, k_from, k_to, generator)
        return x[:, n_context : n_context + horizon]

    def estimate(
        self,
        tokens: Tensor,
        k: Tensor,
        external_cond: Tensor | None,
        positions: Tensor,
        cache: TemporalKVCache | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The network's (x̂_0, ε̂) for tokens (N, T, ...) at levels k (N, T); clean ones at the stabilisation level.

        N may be a multiple of the batch of `external_cond` (guidance stacking sampled futures).
        """
        tokens_in, k_in = self.diffusion.stabilize(tokens, k)
        if external_cond is not None and len(external_cond) != len(tokens):
            external_cond = external_cond.repeat(len(tokens) // len(external_cond), 1, 1)
        if cache is None:
            prediction = self.network(tokens_in, k_in, external_cond, positions)
            self.frame_passes += tokens.shape[1]
        else:
            prediction = self._cached_pass(tokens_in, k_in, k < 0, external_cond, positions, cache)
        return self.diffusion.predict_x0_and_noise(tokens_in, k_in, prediction)

    def _cached_pass(
        self,
        x_in: Tensor,
        k_in: Tensor,
        clean: Tensor,
        cond: Tensor | None,
        positions: Tensor,
        cache: TemporalKVCache,
    ) -> Tensor:
        """Run only the frames after the cached ones; store the leading ones that are clean (level 0)."""
        first = len(cache)
        clean = clean[0, first:]
        cache.store = int(torch.cumprod(clean.int(), 0).sum())
        active = self.network(
            x_in[:, first:], k_in[:, first:], None if cond is None else cond[:, first:], positions[first:], cache
        )
        cache.commit(positions[first:])
        self.frame_passes += x_in.shape[1] - first
        return torch.cat([torch.zeros_like(x_in[:, :first]), active], dim=1)

    def horizons(self, n_context: int, length: int) -> list[int]:
        """How many new tokens each sliding window produces to grow `n_context` tokens to `length`."""
        chunk = self.chunk_size if self.chunk_size > 0 else self.window - n_context
        sizes, current = [], n_context
        while current < length:
            sizes.append(min(chunk, length - current, self.window - 1))
            current += sizes[-1]
        return sizes

    def rollout(
        self,
        context: Tensor,
        length: int,
        external_cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Grow `context` (B, n_context, ...) to `length` tokens, sliding a `window`-token attention window.

        Each window keeps as many of the latest tokens as fit beside the new chunk as context, so rollouts may
        run any multiple of the training length.
        """
        tokens = context
        cache = TemporalKVCache(self.window) if self.kv_cache else None
        for horizon in tqdm(self.horizons(context.shape[1], length), desc="sampling", disable=not progress):
            current = tokens.shape[1]
            start = max(0, current + horizon - self.window)
            cond = None if external_cond is None else external_cond[:, start : current + horizon]
            if cache is not None:
                cache.evict_before(start)
            new = self.sample_window(tokens[:, start:], horizon, cond, generator, cache, offset=start)
            tokens = torch.cat([tokens, new], dim=1)
        return tokens
