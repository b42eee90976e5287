"""Scheduling matrices: the noise level of every generated token at every sampling step (DF paper, Alg. 2).

A matrix has shape (M+1, horizon) with integer *sampling levels*: `steps` is pure noise, 0 is clean. Row 0 is all
`steps`, the last row all 0, and every column is non-increasing. Context tokens are not part of the matrix; the
sampler keeps them at level 0 throughout.
"""

from typing import Literal, get_args

import numpy as np

SchedulingMatrix = Literal["pyramid", "full_sequence", "autoregressive", "trapezoid", "trapezoid_symmetric"]
SCHEDULING_MATRICES: tuple[str, ...] = get_args(SchedulingMatrix)


def pyramid(horizon: int, steps: int, uncertainty_scale: float) -> np.ndarray:
    """Token t lags the first by ⌊t · `uncertainty_scale`⌋ steps: near future sharp, far future uncertain."""
    lag = np.floor(np.arange(horizon) * uncertainty_scale).astype(np.int64)
    return _descend(lag, steps)


def full_sequence(horizon: int, steps: int) -> np.ndarray:
    """All tokens share one level: classic full-sequence video diffusion."""
    return _descend(np.zeros(horizon, dtype=np.int64), steps)


def autoregressive(horizon: int, steps: int) -> np.ndarray:
    """Each token is fully denoised before the next one starts (teacher-forcing-style rollout)."""
    return _descend(np.arange(horizon, dtype=np.int64) * steps, steps)


def trapezoid_symmetric(horizon: int, steps: int, uncertainty_scale: float) -> np.ndarray:
    """A pyramid from both ends: tokens nearest either end settle first (for interpolation); this project's."""
    distance_to_end = np.minimum(np.arange(horizon), np.arange(horizon)[::-1])
    lag = np.floor(distance_to_end * uncertainty_scale).astype(np.int64)
    return _descend(lag, steps)


def trapezoid(horizon: int, steps: int, uncertainty_scale: float) -> np.ndarray:
    """DF v1.5's trapezoid, as it computes it: column t and column −t lag by ⌊t·u⌋ for t < ⌈horizon/2⌉.

    Its quirks are kept for fidelity (`trapezoid_symmetric` is the intended matrix): since −0 is 0, the last
    column lags like the second and for even horizons the middle column is never set, so that token stays at
    level 0 — never denoised; with u < 1 the last row may not reach 0.
    """
    half = (horizon + 1) // 2
    rows = np.arange(steps + int(half * uncertainty_scale))[:, None]
    matrix = np.zeros((len(rows), horizon), dtype=np.int64)
    for t in range(half):
        matrix[:, t] = matrix[:, -t] = (steps + int(t * uncertainty_scale) - rows)[:, 0]
    return np.clip(matrix, 0, steps)


def _descend(lag: np.ndarray, steps: int) -> np.ndarray:
    """Rows m = 0..max(lag)+steps with level clip(steps + lag − m, 0, steps); repeated rows dropped."""
    rows = np.arange(int(lag.max(initial=0)) + steps + 1)[:, None]
    matrix = np.clip(steps + lag[None, :] - rows, 0, steps)
    keep = np.ones(len(matrix), dtype=bool)
    keep[1:] = np.any(matrix[1:] != matrix[:-1], axis=1)
    return matrix[keep]


def scheduling_matrix(kind: SchedulingMatrix, horizon: int, steps: int, uncertainty_scale: float = 1.0) -> np.ndarray:
    """Dispatch by the `algorithm.scheduling_matrix` name; raises for unknown names, listing the valid ones."""
    if horizon < 1 or steps < 1:
        raise ValueError(f"horizon and steps must be >= 1, got horizon={horizon}, steps={steps}")
    if kind == "pyramid":
        return pyramid(horizon, steps, uncertainty_scale)
    if kind == "full_sequence":
        return full_sequence(horizon, steps)
    if kind == "autoregressive":
        return autoregressive(horizon, steps)
    if kind == "trapezoid":
        return trapezoid(horizon, steps, uncertainty_scale)
    if kind == "trapezoid_symmetric":
        return trapezoid_symmetric(horizon, steps, uncertainty_scale)
    raise ValueError(f"unknown scheduling matrix {kind!r}; choose one of: {', '.join(SCHEDULING_MATRICES)}")
