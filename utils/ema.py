"""Exponential moving average of the weights, with a warm-up that suits runs of a few hundred steps.

A plain EMA with decay 0.999 still carries most of the random initialisation after 300 steps; here the decay
of update n is min(decay, (1 + n) / (10 + n)), so early averages follow the weights closely and the full decay
applies only once n is large. Lightning's `WeightAveraging` does the bookkeeping: validation during training
uses the average, checkpoints store it as `state_dict` (what `load=` reads) and the raw weights as
`current_model_state` (what `resume=` continues from), and training ends with the average in the model.
"""

from functools import partial

import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor


def warmup_ema(average: Tensor, current: Tensor, updates: Tensor, decay: float) -> Tensor:
    """The next average of one tensor; integer tensors (step counters) take the current value."""
    if not average.is_floating_point():
        return current
    rate = torch.clamp((1 + updates) / (10 + updates), max=decay).to(average.dtype)
    return torch.lerp(current, average, rate)


class WarmupEMA(WeightAveraging):
    """`experiment.ema`: averages parameters and buffers after every optimiser step; `decay` in (0, 1) is checked
    with the other `experiment.*` keys (`experiments/experiment_config.py`)."""

    def __init__(self, decay: float) -> None:
        super().__init__(use_buffers=True, avg_fn=partial(warmup_ema, decay=decay))
