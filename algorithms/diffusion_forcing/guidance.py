"""Guidance: steering a sample toward a higher return R(x̂_0) while it is denoised, as a hook of the one sampler.

At every step the sampler hands a `Guidance` the tokens x, their levels and `estimate`, which maps any tokens at
any levels to the network's estimates (x̂_0, ε̂) (clean tokens shown at the stabilisation level). The guidance
returns the estimates the DDIM step then uses. Two ways, `algorithm.guidance_mode`:

- `through_network` (DF v1.5, the default): the return of the estimate is differentiated *through the network*
  with respect to the noisy tokens, ε̂ ← ε̂ − √(1 − ᾱ_next)·∇ₓ(s·R(x̂_0(x))), and x̂_0 is recomputed from that ε̂
  (classifier guidance in DDIM form; s = `guidance_scale`).
- `on_estimate` (this project's option): the estimate itself is pulled, x̂_0 ← x̂_0 + s·(1 − ᾱ_k)·∇_{x̂_0}R, a
  strong pull while a token is noisy that fades as it settles; no backward pass through the network.

Monte-Carlo tree guidance (MCTG, DF paper §3.3) adds, for the `near` tokens (the ones MPC executes next), the
gradient through the network of the return averaged over `mctg_samples` futures: copies of the plan whose `far`
tokens (the rest of the plan) are re-noised from their current estimate with fresh noise at their current level.
A near plan is thus judged by the futures it makes likely rather than by one of them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from einops import repeat
from torch import Tensor

from .models.diffusion import Diffusion

GuidanceMode = Literal["through_network", "on_estimate"]
# (tokens (N, T, ...), levels (N, T)) → the network's (x̂_0, ε̂) for them
Estimate = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
# x̂_0 tokens (N, T, ...) → returns (N,); N may stack several futures of each plan
ReturnFunction = Callable[[Tensor], Tensor]


class Guidance(Protocol):
    """Estimates (x̂_0, ε̂) for tokens x at levels k, the next step taking them to `k_next`."""

    def __call__(self, x: Tensor, k: Tensor, k_next: Tensor, estimate: Estimate) -> tuple[Tensor, Tensor]: ...


@dataclass
class ReturnGuidance:
    """Guidance toward a higher `returns`, scaled by `scale`; MCTG over `near` tokens when `mctg_samples` > 1."""

    diffusion: Diffusion
    returns: ReturnFunction
    scale: float
    mode: GuidanceMode = "through_network"
    near: Tensor | None = None  # (T,) bool: tokens MCTG steers
    far: Tensor | None = None  # (T,) bool: tokens MCTG re-draws in each sampled future
    mctg_samples: int = 0
    generator: torch.Generator | None = None

    def __call__(self, x: Tensor, k: Tensor, k_next: Tensor, estimate: Estimate) -> tuple[Tensor, Tensor]:
        x = x.detach()
        if self.mode == "through_network":
            with torch.enable_grad():
                x = x.requires_grad_(True)
                x0, noise = estimate(x, k)
                (gradient,) = torch.autograd.grad(self.scale * self.returns(x0).sum(), x)
                gradient = gradient + self.scale * self._futures_gradient(x, k, x0.detach(), estimate)
            noise = noise.detach() - (1 - self.diffusion.alpha_bar(k_next, x)).sqrt() * gradient
            a = self.diffusion.alpha_bar(k, x)
            return ((x.detach() - (1 - a).sqrt() * noise) / a.sqrt()), noise
        x0, noise = estimate(x, k)
        with torch.enable_grad():
            target = x0.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.returns(target).sum(), target)
            gradient = gradient + self._futures_gradient(x.requires_grad_(True), k, x0, estimate)
        return x0 + self.scale * (1 - self.diffusion.alpha_bar(k, x)) * gradient, noise

    def _futures_gradient(self, x: Tensor, k: Tensor, x0: Tensor, estimate: Estimate) -> Tensor:
        """MCTG: ∇ₓ of the return averaged over sampled futures, on the near tokens only (zero without MCTG)."""
        near, far = self.near, self.far
        if self.mctg_samples < 2 or near is None or far is None or not bool((k[:, near] >= 0).any()):
            return torch.zeros_like(x)  # once the near tokens are clean there is nothing left to steer
        batch, samples = x.shape[0], self.mctg_samples
        xs = repeat(x, "b t ... -> (n b) t ...", n=samples)
        ks = repeat(k, "b t -> (n b) t", n=samples)
        fresh = torch.randn(xs.shape, device=x.device, dtype=x.dtype, generator=self.generator)
        futures = self.diffusion.q_sample(repeat(x0, "b t ... -> (n b) t ...", n=samples), ks, fresh)
        redraw = (far[None, :] & (ks >= 0)).reshape(*ks.shape, *([1] * (x.ndim - 2)))
        xs = torch.where(redraw, futures, xs)
        returns = self.returns(estimate(xs, ks)[0]).reshape(samples, batch).mean(0)
        (gradient,) = torch.autograd.grad(returns.sum(), x)
        return torch.where(near.reshape(1, -1, *([1] * (x.ndim - 2))), gradient, torch.zeros_like(gradient))
