"""Reference-free drift of generated video: how far the statistics of generated frames, pooled over a span of
frames and clips, move from those of real frames of the same dataset. No ground truth and no downloaded weights
are needed, so the score stays meaningful long after the rollout has left the ground truth's trajectory.

Three statistics, each compared with the real frames' as a distance that is 0 when they agree:
- `colour`: total-variation distance (0..1) between the per-channel colour histograms of the generated frames
  and of the real frames. Blow-up saturates or shifts colours.
- `sharpness`: |log₂| of the ratio of mean spatial gradient energy (squared finite differences) to the real
  frames'. Noise raises it, blur lowers it; 1 means twice or half as much.
  The ratio adds 1 % of the real value above and below, so a flat video scores about 6.7, not infinity.
- `motion`: |M − R| / (M + R) for the mean squared change from the previous frame, M generated and R real:
  0 when they agree, 1 for frozen frames, towards 1 for flicker. Bounded because real clips have still
  stretches too (a held no-op), which a ratio would punish as hard as a broken model.
`drift` is the sum of the three.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

BINS = 16
FLOOR = 0.01  # of the real value, added to both sides of a ratio


def colour_histograms(frames: Tensor) -> Tensor:
    """Per-channel histograms (N, C, BINS) of frames (N, C, H, W) in [0, 1], each summing to 1."""
    index = (frames.clamp(0, 1) * BINS).long().clamp(max=BINS - 1).flatten(2)
    counts = torch.zeros(*index.shape[:2], BINS, device=frames.device).scatter_add_(
        2, index, torch.ones_like(index, dtype=torch.float)
    )
    return counts / index.shape[-1]


def gradient_energy(frames: Tensor) -> Tensor:
    """Mean squared horizontal and vertical finite difference of every frame (N, C, H, W) → (N,)."""
    dx = frames[..., :, 1:] - frames[..., :, :-1]
    dy = frames[..., 1:, :] - frames[..., :-1, :]
    return (dx.pow(2).flatten(1).mean(1) + dy.pow(2).flatten(1).mean(1)) / 2


def temporal_change(videos: Tensor) -> Tensor:
    """Mean squared change of every frame from the one before, videos (B, T, C, H, W) → (B, T - 1)."""
    return (videos[:, 1:] - videos[:, :-1]).pow(2).flatten(2).mean(-1)


@dataclass(frozen=True)
class VideoStatistics:
    """The statistics of clips, per frame index (leading dimension T) or pooled over a span of frames (none)."""

    histogram: Tensor  # (..., C, BINS)
    sharpness: Tensor  # (...)
    motion: Tensor  # (...): change from the previous frame; NaN at frame 0, which has none

    @classmethod
    def per_frame(cls, videos: Tensor) -> "VideoStatistics":
        """Of clips (B, T, C, H, W) in [0, 1], averaged over the clips."""
        videos = videos.float()
        batch, length = videos.shape[:2]
        frames = videos.flatten(0, 1)
        histograms = colour_histograms(frames)
        histogram = histograms.reshape(batch, length, *histograms.shape[1:])
        motion = torch.cat([videos.new_full((1,), float("nan")), temporal_change(videos).mean(0)])
        return cls(histogram.mean(0), gradient_energy(frames).reshape(batch, length).mean(0), motion)

    def pooled(self, start: int = 0, end: int | None = None) -> "VideoStatistics":
        """Averaged over frames start..end-1: the statistics of that span as one sample of video."""
        span = slice(start, end)
        return VideoStatistics(self.histogram[span].mean(0), self.sharpness[span].mean(0), self.motion[span].nanmean(0))


def drift(statistics: VideoStatistics, reference: VideoStatistics) -> dict[str, float]:
    """Each statistic's distance from `reference` (both pooled) and their sum `drift`."""
    scores = {
        "colour": float((statistics.histogram - reference.histogram).abs().sum(-1).mean() / 2),
        "sharpness": log_ratio(float(statistics.sharpness), float(reference.sharpness)),
        "motion": relative_difference(float(statistics.motion), float(reference.motion)),
    }
    return scores | {"drift": sum(scores.values())}


def log_ratio(value: float, real: float) -> float:
    """|log₂((value + f·real) / (real + f·real))| with f = `FLOOR`."""
    floor = FLOOR * real
    return abs(math.log2((value + floor) / (real + floor)))


def relative_difference(value: float, real: float) -> float:
    """|value − real| / (value + real), 0 for a NaN value (no previous frame) or two zeros."""
    if math.isnan(value) or value + real == 0:
        return 0.0
    return abs(value - real) / (value + real)
