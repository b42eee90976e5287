"""Planning tokens and the returns that goal guidance climbs (the sampler and the guidance hook are shared).

Token layout (DF v1.5): token 0 is the start state repeated `frame_stack` times and stays clean; the plan's
tokens follow, each `frame_stack` frames of (state[, action that led to it]); positions after the requested
horizon are padding, zeros labelled pure noise (the network was told so in training), which gives one network
every horizon.

Returns map estimated tokens x̂_0 (N, T, fs·C), normalised, to one number per plan; N may stack several sampled
futures of each of the B plans (MCTG), so goals are repeated to N.
"""

import torch
from einops import rearrange, reduce, repeat
from torch import Tensor

from .guidance import ReturnFunction

# DF v1.5 averages its return over the evaluation batch (128 plans): per plan, its guidance_scale acts at 1/128
ORIGINAL_EVALUATION_BATCH = 128


def to_tokens(frames: Tensor, frame_stack: int) -> Tensor:
    """(B, T·fs, C) frames → (B, T, fs·C) tokens."""
    return rearrange(frames, "b (t s) c -> b t (s c)", s=frame_stack)


def to_frames(tokens: Tensor, frame_stack: int) -> Tensor:
    """(B, T, fs·C) tokens → (B, T·fs, C) frames."""
    return rearrange(tokens, "b t (s c) -> b (t s) c", s=frame_stack)


def start_token(start: Tensor, frame_stack: int) -> Tensor:
    """(B, C) start frame → (B, 1, fs·C): the frame repeated, DF v1.5's `padding_mode=same`."""
    return repeat(start, "b c -> b 1 (s c)", s=frame_stack)


def original_goal_return(start: Tensor, goal: Tensor, frame_stack: int, observation_dim: int) -> ReturnFunction:
    """DF v1.5's return, in normalised units, for `start` (B, C) and `goal` (B, C) frames (zero actions).

    Every frame's squared difference to its target — the start for the start token's frames, the goal for all
    later ones, padding included — is summed per pair of observation numbers (position, then velocity) and over
    the actions; observation distances are squashed by tanh(d/2); R = −1000 × the weighted mean, weight 2 on the
    start token's frames and 8 on all later ones. (DF v1.5's code writes weights 20 / 1 / 0 for start / plan /
    beyond the horizon into the position column first, but builds the columns with `einops.repeat`, whose result
    is a broadcast view: the later writes of 2 and 8 into the other columns overwrite them. These are the
    weights its guidance actually ran with, and so what its `guidance_scale` values were tuned for.)
    """

    def returns(tokens: Tensor) -> Tensor:
        frames = to_frames(tokens, frame_stack)
        copies, length = len(tokens) // len(start), frames.shape[1]
        targets = torch.cat(
            [repeat(start, "b c -> b s c", s=frame_stack), repeat(goal, "b c -> b t c", t=length - frame_stack)],
            dim=1,
        ).repeat(copies, 1, 1)
        squared = (frames - targets) ** 2
        observed = reduce(squared[..., :observation_dim], "n t (g c) -> n t g", "sum", c=2).sqrt()
        actions = squared[..., observation_dim:]
        acted = actions.sum(-1, keepdim=True).sqrt() if actions.shape[-1] else torch.zeros_like(observed[..., :1])
        distances = torch.cat([torch.tanh(observed / 2), acted], dim=-1)
        weights = torch.full((length, 1), 8.0, device=tokens.device)
        weights[:frame_stack] = 2
        return -(distances * weights).mean(dim=(1, 2)) * 1000 / ORIGINAL_EVALUATION_BATCH

    return returns


def goal_distance_return(goal: Tensor, horizon: int, frame_dim: int, mean: Tensor, std: Tensor) -> ReturnFunction:
    """This project's return: −Σ_t ‖position_t − goal‖ over the plan's first `horizon` frames, in D4RL units."""

    def returns(tokens: Tensor) -> Tensor:
        frames = tokens[:, 1:].reshape(tokens.shape[0], -1, frame_dim)[:, :horizon]
        positions = frames[..., :2] * std[:2] + mean[:2]
        goals = goal.repeat(len(tokens) // len(goal), 1)
        return -(positions - goals[:, None]).norm(dim=-1).sum(dim=1)

    return returns
