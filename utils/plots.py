"""Plots written next to the run (PNG) and shown in wandb; matplotlib's Agg backend, no screen needed."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_per_frame_curves(
    path: Path,
    curves: dict[str, dict[str, np.ndarray]],
    n_context: int,
    window: int,
    title: str,
    models: int = 1,
) -> Path:
    """One panel per metric against the frame index, one line per predictor (the `models` first, drawn solid,
    then baselines, dotted), marking each training-length window."""
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
    for ax, (metric, lines) in zip(axes[0], curves.items(), strict=True):
        for index, (label, values) in enumerate(lines.items()):
            frames = np.arange(n_context, n_context + len(values))
            solid = {"marker": "." if len(values) < 40 else None, "linewidth": 2}
            style = solid if index < models else {"linestyle": ":", "linewidth": 1.2}
            ax.plot(frames, values, label=label, **style)
        for boundary in range(window, n_context + len(values), window):
            ax.axvline(boundary - 0.5, color="grey", linewidth=0.5, linestyle="--")
        ax.set_xlabel("frame (dashed: multiples of the training length)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return save_figure(fig, path, title)


def save_figure(fig: plt.Figure, path: Path, title: str) -> Path:
    """Title, lay out and write `fig` as a PNG at `path` (folders created), then free it."""
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
