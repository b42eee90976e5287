"""Diffusion Forcing planning: denoise a plan after a clean start token, steered toward a goal.

Token layout (DF v1.5): token 0 is the start state repeated `frame_stack` times and stays clean; the plan's
tokens follow, each `frame_stack` frames of (state[, action that led to it]); positions after the requested
horizon are padding, zeros labelled pure noise (the network was told so in training), which gives one network
every horizon.

Goal guidance. R(x̂_0) = −Σ_t ‖p_t − g‖ over the plan's frames (positions p in D4RL units, goal g). At each
step x̂_0 ← x̂_0 + s·(1 − ᾱ_k)·∇R, with s = `guidance_scale` and the gradient taken on the estimate x̂_0 itself:
a strong pull while a token is noisy that fades as it settles, then the usual DDIM move toward the guided x̂_0;
the network turns the pulled estimate back into a feasible plan at the next step.

Monte-Carlo tree guidance (MCTG, DF paper §3.3). The near tokens — the ones MPC executes next — also receive
the gradient, through the network, of the return of the futures they lead to, averaged over `mctg_samples`
futures: copies of the plan whose later tokens are re-noised from their current estimate with fresh noise at
their current level. A near plan is thus judged by the futures it makes likely rather than by one of them.
"""

from collections.abc import Callable

import torch
from einops import rearrange, repeat
from torch import Tensor

from .models.diffusion import Diffusion
from .scheduling import SchedulingMatrix, scheduling_matrix

# R(x̂_0 (B, T, D) normalised tokens) → per-sample return (B,)
ReturnFunction = Callable[[Tensor], Tensor]


def to_tokens(frames: Tensor, frame_stack: int) -> Tensor:
    """(B, T·fs, C) frames → (B, T, fs·C) tokens."""
    return rearrange(frames, "b (t s) c -> b t (s c)", s=frame_stack)


def to_frames(tokens: Tensor, frame_stack: int) -> Tensor:
    """(B, T, fs·C) tokens → (B, T·fs, C) frames."""
    return rearrange(tokens, "b t (s c) -> b (t s) c", s=frame_stack)


def start_token(start: Tensor, frame_stack: int) -> Tensor:
    """(B, C) start frame → (B, 1, fs·C): the frame repeated, DF v1.5's `padding_mode=same`."""
    return repeat(start, "b c -> b 1 (s c)", s=frame_stack)


class Planner:
    """Samples plans from a trained token network; holds no weights of its own."""

    def __init__(
        self,
        diffusion: Diffusion,
        network: Callable[..., Tensor],
        n_tokens: int,
        frame_stack: int,
        kind: SchedulingMatrix,
        uncertainty_scale: float,
    ) -> None:
        self.diffusion = diffusion
        self.network = network
        self.n_tokens = n_tokens
        self.frame_stack = frame_stack
        self.kind = kind
        self.uncertainty_scale = uncertainty_scale

    def levels(self, plan_tokens: int, device: torch.device) -> Tensor:
        """Diffusion levels (M+1, n_tokens): start clean (-1), plan per schedule, padding pure noise."""
        steps = self.diffusion.config.sampling_timesteps
        schedule = torch.as_tensor(scheduling_matrix(self.kind, plan_tokens, steps, self.uncertainty_scale))
        to_timestep = self.diffusion.level_of_step.cpu()
        rows = len(schedule)
        start = torch.full((rows, 1), -1)
        padding = torch.full((rows, self.n_tokens - 1 - plan_tokens), self.diffusion.config.timesteps - 1)
        return torch.cat([start, to_timestep[schedule], padding], dim=1).to(device)

    def predict_x0(self, x: Tensor, k: Tensor) -> Tensor:
        """x̂_0 of every token; clean tokens (k = -1) are shown at the stabilisation level."""
        output = self.network(*self.diffusion.stabilize(x, k), None, None)
        x0, _ = self.diffusion.predict_x0_and_noise(x, k, output)
        return torch.where((k < 0)[..., None], x, x0)

    def plan(
        self,
        start: Tensor,
        horizon: int,
        goal_return: ReturnFunction | None = None,
        guidance_scale: float = 0.0,
        mctg_samples: int = 0,
        near_tokens: int = 1,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Plan `horizon` frames (B, horizon, C) after the normalised `start` frames (B, C).

        With `goal_return` and `guidance_scale` > 0 the plan is guided; `mctg_samples` > 1 averages the near
        tokens' guidance over that many sampled futures (`near_tokens` plan tokens count as near).
        """
        batch, device = start.shape[0], start.device
        plan_tokens = -(-horizon // self.frame_stack)
        if not 1 <= plan_tokens < self.n_tokens:
            raise ValueError(f"horizon {horizon} needs 1..{(self.n_tokens - 1) * self.frame_stack} frames")
        levels = self.levels(plan_tokens, device)
        token_dim = start.shape[1] * self.frame_stack
        noise = self.diffusion.clipped_noise((batch, plan_tokens, token_dim), start, generator)
        padding = start.new_zeros(batch, self.n_tokens - 1 - plan_tokens, token_dim)
        x = torch.cat([start_token(start, self.frame_stack), noise, padding], dim=1)
        guided = goal_return is not None and guidance_scale > 0
        for m in range(len(levels) - 1):
            k_from, k_to = levels[m].expand(batch, -1), levels[m + 1].expand(batch, -1)
            if guided:
                x0 = self._guided_x0(x, k_from, goal_return, guidance_scale, mctg_samples, near_tokens, generator)
            else:
                x0 = self.predict_x0(x, k_from)
            x = self.diffusion.ddim_update(x, x0, k_from, k_to, generator)
        return to_frames(x[:, 1 : 1 + plan_tokens], self.frame_stack)[:, :horizon]

    def _guided_x0(
        self,
        x: Tensor,
        k: Tensor,
        goal_return: ReturnFunction,
        scale: float,
        mctg_samples: int,
        near_tokens: int,
        generator: torch.Generator | None,
    ) -> Tensor:
        x0 = self.predict_x0(x, k).detach()
        with torch.enable_grad():
            estimate = x0.clone().requires_grad_(True)
            (gradient,) = torch.autograd.grad(goal_return(estimate).sum(), estimate)
            near = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
            near[1 : 1 + near_tokens] = True
            if mctg_samples > 1 and bool((k[:, near] >= 0).any()):  # once the near tokens are clean, nothing to steer
                x = x.detach().requires_grad_(True)
                futures = self._mctg_gradient(x, k, x0, near, goal_return, mctg_samples, generator)
                gradient = gradient + torch.where(near[None, :, None], futures, torch.zeros_like(futures))
        a = self.diffusion.alpha_bar(k, x)
        return (x0 + scale * (1 - a) * gradient).detach()

    def _mctg_gradient(
        self,
        x: Tensor,
        k: Tensor,
        x0: Tensor,
        near: Tensor,
        goal_return: ReturnFunction,
        samples: int,
        generator: torch.Generator | None,
    ) -> Tensor:
        """∇_x of the return averaged over `samples` futures that share the near tokens of `x`."""
        batch = x.shape[0]
        far = ~near
        far[0] = False  # the start token is clean and shared
        xs = repeat(x, "b t d -> (n b) t d", n=samples)
        ks = repeat(k, "b t -> (n b) t", n=samples)
        fresh = torch.randn(xs.shape, device=x.device, generator=generator)
        futures = self.diffusion.q_sample(repeat(x0, "b t d -> (n b) t d", n=samples), ks, fresh)
        xs = torch.where(far[None, :, None] & (ks[..., None] >= 0), futures, xs)
        returns = goal_return(self.predict_x0(xs, ks)).reshape(samples, batch).mean(0)
        (gradient,) = torch.autograd.grad(returns.sum(), x)
        return gradient
