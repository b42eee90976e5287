"""Trivial predictors scored beside the model on the same clips, so a metric has something to be read against.

- `copy_last`: every generated frame is the last context frame. Beating it means the model predicts change
  (motion from the actions) without losing the scene; on slow-changing data it is a hard bar.
- `mean_colour`: every generated frame is the last context frame's mean colour, a uniform image: what a model
  that has lost the scene and outputs a blur scores at best.
"""

from torch import Tensor

BASELINES = ("copy_last", "mean_colour")


def baseline_predictions(context: Tensor, n_generated: int) -> dict[str, Tensor]:
    """Each baseline's frames (B, n_generated, C, H, W) from the context (B, T, C, H, W)."""
    last = context[:, -1:]
    shape = (-1, n_generated, -1, -1, -1)
    return {
        "copy_last": last.expand(shape),
        "mean_colour": last.mean(dim=(-2, -1), keepdim=True).expand_as(last).expand(shape),
    }
