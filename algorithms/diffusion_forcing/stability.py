"""Long-rollout stability, the paper's central claim as numbers: several video models (and trivial baselines) roll
out many times their training length from the same context clips and actions, and are scored per frame against
the ground truth (MSE) and against real frames' statistics (`utils/drift_metrics.py`: reference-free drift).

A method's drift at N× is the drift of its frames pooled over the N-th training-length segment of the clips;
it *breaks* at the first frame where the drift of the training length ending there exceeds `threshold` — twice
the largest that the ground-truth clips themselves reach (at least `MIN_THRESHOLD`), so a real video never
breaks.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from utils.drift_metrics import VideoStatistics, drift
from utils.video_baselines import baseline_predictions

# (context (B, n, C, H, W) in [-1, 1], total length, actions (B, length, A) or None, generator) → (B, length, …)
Rollout = Callable[[Tensor, int, Tensor | None, torch.Generator], Tensor]
GROUND_TRUTH = "ground truth"
MIN_THRESHOLD = 0.5

log = logging.getLogger(__name__)


@dataclass
class StabilityReport:
    n_context: int
    training_length: int
    error: dict[str, Tensor]  # per generated frame: MSE against the ground truth (pixels in [0, 1])
    statistics: dict[str, VideoStatistics]  # per frame of the whole clips
    reference: VideoStatistics  # of real frames, pooled
    threshold: float = 0.0

    def window_drift(self, name: str) -> dict[str, Tensor]:
        """Each drift statistic of the training length ending at every frame (fewer frames at the start), (T,)."""
        statistics = self.statistics[name]
        length = len(statistics.sharpness)
        windows = [
            drift(statistics.pooled(max(0, end - self.training_length), end), self.reference)
            for end in range(1, length + 1)
        ]
        return {key: torch.tensor([w[key] for w in windows]) for key in windows[0]}

    def segment_drift(self, name: str, multiple: int) -> float:
        """The drift of the `multiple`-th training-length segment of the clips."""
        end = multiple * self.training_length
        return drift(self.statistics[name].pooled(end - self.training_length, end), self.reference)["drift"]

    def breaking_frame(self, name: str) -> int | None:
        """The first frame whose window drift exceeds the threshold, None if none does."""
        over = (self.window_drift(name)["drift"] > self.threshold).nonzero()
        return int(over[0]) if len(over) else None

    def table(self, multiples: list[int]) -> list[dict[str, object]]:
        """One row per method: drift at each multiple of the training length, the breaking frame, mean MSE."""
        rows = []
        for name in self.statistics:
            row: dict[str, object] = {"method": name}
            row |= {f"drift@{m}x": round(self.segment_drift(name, m), 3) for m in multiples}
            row["breaks at frame"] = self.breaking_frame(name)
            row["mse"] = round(float(self.error[name].mean()), 5) if name in self.error else None
            rows.append(row)
        return rows


@torch.no_grad()
def measure_stability(
    rollouts: dict[str, Rollout],
    videos: Tensor,
    actions: Tensor | None,
    n_context: int,
    training_length: int,
    reference: VideoStatistics,
    seed: int = 0,
) -> StabilityReport:
    """Roll every method out over the clips `videos` (B, T, C, H, W) in [-1, 1] from their first `n_context`
    frames and the clips' actions, on the clips' device; copy-last and the ground truth are scored beside them.
    `reference`: the pooled statistics of real frames of the same dataset."""
    context = videos[:, :n_context]
    truth = (videos.cpu() + 1) / 2
    generated = {}
    for index, (name, rollout) in enumerate(rollouts.items()):
        log.info(
            "rolling out %s (%d of %d): %d frames from %d", name, index + 1, len(rollouts), videos.shape[1], n_context
        )
        frames = rollout(context, videos.shape[1], actions, torch.Generator(videos.device).manual_seed(seed))
        generated[name] = ((frames.cpu() + 1) / 2).clamp(0, 1)
    copy_last = baseline_predictions(truth[:, :n_context], videos.shape[1] - n_context)["copy_last"]
    generated["copy_last"] = torch.cat([truth[:, :n_context], copy_last], dim=1)
    error = {
        name: (frames[:, n_context:] - truth[:, n_context:]).pow(2).flatten(2).mean(-1).mean(0)
        for name, frames in generated.items()
    }
    statistics = {name: VideoStatistics.per_frame(frames) for name, frames in generated.items()}
    statistics[GROUND_TRUTH] = VideoStatistics.per_frame(truth)
    report = StabilityReport(n_context, training_length, error, statistics, reference)
    report.threshold = max(MIN_THRESHOLD, 2 * float(report.window_drift(GROUND_TRUTH)["drift"].max()))
    return report
