"""Does a video model use its context and its actions? Its x̂₀ of the first frame after the context, with and
without them.

The first new frame is noised to a high level, so it alone says little, and the network estimates it once with
the clip's own clean context and once with another clip's (the batch rolled by one); the actions stay the
clip's own. A model that uses its context scores clearly lower MSE with its own; one that has learnt only
the data's average frame scores the same with both. With actions, a third estimate keeps the clip's own context
but gives the new frame another clip's action: a model that ignores its actions scores the same as with its
own. Copying the last context frame is scored beside them.
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
    """MSE (in [0, 1] pixel units) of the estimated frame `n_context` for `own` and `other` context, for
    `other_actions` (only with `external_cond`), and of `copy_last`; `videos` (B, T ≥ n_context + 1, C, H, W) in
    [-1, 1] with B ≥ 2, `level` a diffusion timestep."""
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

    def error(context: Tensor, frame_cond: Tensor | None = cond) -> float:
        x0, _ = sampler.estimate(torch.cat([context, noisy[:, None]], 1), k, frame_cond, positions)
        return float(((x0[:, -1] - target) / 2).pow(2).mean())

    context = videos[:, :n_context]
    scores = {"own": error(context), "other": error(context.roll(1, dims=0))}
    if cond is not None:
        other_action = torch.cat([cond[:, :-1], cond[:, -1:].roll(1, dims=0)], 1)
        scores["other_actions"] = error(context, other_action)
    return scores | {"copy_last": float(((context[:, -1] - target) / 2).pow(2).mean())}
