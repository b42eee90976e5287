"""Does a video model use its context? Its x̂₀ of the first frame after the context, with and without it.

The first new frame is noised to a high level, so it alone says little, and the network estimates it once with
the clip's own clean context and once with another clip's (the batch rolled by one); the actions stay the
clip's own. A model that uses its context scores clearly lower MSE with its own; one that has learnt only
the data's average frame scores the same with both. Copying the last context frame is scored beside them.
"""

import torch
from torch import Tensor

from .sampling import Sampler


@torch.no_grad()
def context_probe(
    sampler: Sampler,
    videos: Tensor,
    n_context: int,
    level: int,
    external_cond: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """MSE (in [0, 1] pixel units) of the estimated frame `n_context` for `own` and `other` context, and of
    `copy_last`; `videos` (B, T ≥ n_context + 1, C, H, W) in [-1, 1] with B ≥ 2, `level` a diffusion timestep."""
    if len(videos) < 2:
        raise ValueError("context_probe needs at least 2 clips to swap contexts between")
    diffusion = sampler.diffusion
    target = videos[:, n_context]
    noise = diffusion.clipped_noise(target.shape, target, generator)
    k_target = torch.full((len(videos),), level, device=videos.device)
    noisy = diffusion.q_sample(target, k_target, noise)
    k = torch.full((len(videos), n_context + 1), -1, device=videos.device)
    k[:, -1] = level
    cond = None if external_cond is None else external_cond[:, : n_context + 1]
    positions = torch.arange(n_context + 1, device=videos.device)

    def error(context: Tensor) -> float:
        x0, _ = sampler.estimate(torch.cat([context, noisy[:, None]], 1), k, cond, positions)
        return float(((x0[:, -1] - target) / 2).pow(2).mean())

    context = videos[:, :n_context]
    return {
        "own": error(context),
        "other": error(context.roll(1, dims=0)),
        "copy_last": float(((context[:, -1] - target) / 2).pow(2).mean()),
    }
