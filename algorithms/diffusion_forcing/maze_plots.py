"""Pictures of maze2d episodes: walls, start, goal (with its 0.5 success radius), executed path and plans.

Drawn in D4RL's frame with columns left to right and rows top to bottom, so the picture matches the maze's map;
walls stand where the state frame puts them (cell − 0.7 … cell + 0.3, D4RL's particle offset).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from datasets.maze2d.environment import SUCCESS_RADIUS  # noqa: E402
from datasets.maze2d.mazes import PARTICLE_OFFSET  # noqa: E402
from utils.plots import save_figure  # noqa: E402
from utils.video_io import write_video  # noqa: E402

from .maze_evaluation import EpisodeBatch  # noqa: E402


def _draw_maze(ax: plt.Axes, batch: EpisodeBatch, episode: int) -> None:
    maze = batch.maze
    low = -0.5 - PARTICLE_OFFSET  # where cell 0's free space starts in the state frame
    for r in range(maze.height):
        for c in range(maze.width):
            if maze.walls[r][c]:
                ax.add_patch(plt.Rectangle((c + low, r + low), 1, 1, color="0.35"))
    goal = batch.goals[episode]
    ax.add_patch(plt.Circle((goal[1], goal[0]), SUCCESS_RADIUS, color="tab:green", alpha=0.25))
    ax.plot(goal[1], goal[0], marker="*", color="tab:green", markersize=14, label="goal")
    start = batch.states[episode, 0]
    ax.plot(start[1], start[0], marker="o", color="tab:blue", markersize=8, label="start")
    ax.set_xlim(low, maze.width + low)
    ax.set_ylim(maze.height + low, low)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_episode(ax: plt.Axes, batch: EpisodeBatch, episode: int, until: int, plan: tuple[int, np.ndarray] | None):
    _draw_maze(ax, batch, episode)
    path = batch.states[episode, : until + 1]
    ax.plot(path[:, 1], path[:, 0], color="tab:blue", linewidth=1.5, label="executed")
    if plan is not None:
        step, frames = plan
        planned = np.concatenate([batch.states[episode, step : step + 1, :2], frames[episode, :, :2]])
        ax.plot(planned[:, 1], planned[:, 0], color="tab:orange", linestyle="--", linewidth=1.2, label="plan")


def plot_episodes(path: Path, batch: EpisodeBatch, count: int, title: str) -> Path:
    """One panel per episode: the executed path and the first plan."""
    count = min(count, len(batch.goals))
    fig, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.4), squeeze=False)
    for episode, ax in enumerate(axes[0]):
        _draw_episode(ax, batch, episode, batch.states.shape[1] - 1, batch.plans[0] if batch.plans else None)
        reward = batch.rewards[episode].sum()
        ax.set_title(f"start {list(batch.start_cells[episode])}: return {reward:.0f}", fontsize=9)
    axes[0][0].legend(loc="lower left", fontsize=7)
    return save_figure(fig, path, title)


def mpc_animation(path: Path, batch: EpisodeBatch, episode: int = 0, fps: int = 2) -> Path:
    """An MP4 with one frame per replan: the path executed so far and the plan made at that step."""
    frames = []
    for plan in batch.plans or [(batch.states.shape[1] - 1, None)]:
        fig, ax = plt.subplots(figsize=(4, 4))
        _draw_episode(ax, batch, episode, plan[0], plan if plan[1] is not None else None)
        ax.set_title(f"step {plan[0]}", fontsize=10)
        fig.tight_layout()
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    height, width = (s - s % 2 for s in frames[0].shape[:2])  # H.264 wants even sizes
    return write_video(path, np.stack([f[:height, :width] for f in frames]), fps=fps)
