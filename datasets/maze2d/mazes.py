"""The three maze2d layouts in D4RL's frame, their constants, and shortest paths between cells.

D4RL's state is `(row, col, v_row, v_col)`, the particle's joint positions. D4RL's model puts the particle's body at
(1.2, 1.2) and the wall of cell `(i, j)` at (i + 1, j + 1), so the state `(i, j)` is *not* the centre of cell
`(i, j)` but 0.2 past it along both axes (`PARTICLE_OFFSET`): a particle resting at a cell's centre reads
`(i − 0.2, j − 0.2)`. Rewards and targets live in the state's frame; walls are 0.2 nearer on the −row / −col sides.
gymnasium-robotics centres its mazes on the origin (`x = (col + 0.5) − W/2`, `y = H/2 − (row + 0.5)`, the cell's
centre); `to_d4rl` / `from_d4rl` convert, offset included. The wall layouts are gymnasium-robotics' maps, D4RL's.
"""

import contextlib
import io
from collections import deque
from dataclasses import dataclass
from functools import cached_property

import numpy as np

with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about its (unrelated) Adroit envs
    from gymnasium_robotics.envs.maze import maps

Cell = tuple[int, int]

PARTICLE_OFFSET = 0.2  # D4RL's particle body sits at (1.2, 1.2), its walls' grid at (1, 1)


@dataclass(frozen=True)
class Maze:
    """One maze2d layout: walls (1) and free cells (0), indexed `[row][col]`, and D4RL's facts about it."""

    name: str
    walls: tuple[tuple[int, ...], ...]
    goal_cell: Cell  # the `G` of D4RL's maze string: the evaluation goal of maze2d-*-v1
    max_episode_steps: int  # D4RL's episode length (also the datasets' timeout)
    d4rl_ref_min_score: float  # D4RL's normalisation constants for maze2d-<name>-v1
    d4rl_ref_max_score: float
    point_maze_id: str  # gymnasium-robotics environment with the same layout
    d4rl_env_id: str

    @property
    def height(self) -> int:
        return len(self.walls)

    @property
    def width(self) -> int:
        return len(self.walls[0])

    @cached_property
    def free_cells(self) -> list[Cell]:
        """Every free cell, in row-major order (D4RL's reset locations, the goal included)."""
        return [(r, c) for r in range(self.height) for c in range(self.width) if not self.walls[r][c]]

    def is_free(self, cell: Cell) -> bool:
        r, c = cell
        return 0 <= r < self.height and 0 <= c < self.width and not self.walls[r][c]

    def cell_of(self, position: np.ndarray) -> Cell:
        """D4RL's grid cell of a state's position: the nearest integer point (as its controller rounds)."""
        return int(round(float(position[0]))), int(round(float(position[1])))

    def shortest_path(self, start: Cell, goal: Cell) -> list[Cell]:
        """Cells from `start` (excluded) to `goal` (included) through 4-connected free cells; BFS."""
        previous: dict[Cell, Cell | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == goal:
                break
            r, c = cell
            for step in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if step not in previous and self.is_free(step):
                    previous[step] = cell
                    queue.append(step)
        if goal not in previous:
            raise ValueError(f"no path from {start} to {goal} in maze {self.name}")
        path = []
        cell: Cell | None = goal
        while cell is not None and cell != start:
            path.append(cell)
            cell = previous[cell]
        return path[::-1]

    def to_d4rl(self, xy: np.ndarray) -> np.ndarray:
        """gymnasium-robotics `(x, y[, vx, vy])` → D4RL `(row, col[, v_row, v_col])` (last axis)."""
        x, y = xy[..., 0], xy[..., 1]
        centre = 0.5 + PARTICLE_OFFSET
        out = [self.height / 2 - centre - y, x + self.width / 2 - centre]
        if xy.shape[-1] == 4:
            out += [-xy[..., 3], xy[..., 2]]
        return np.stack(out, axis=-1)

    def from_d4rl(self, state: np.ndarray) -> np.ndarray:
        """D4RL `(row, col[, v_row, v_col])` → gymnasium-robotics `(x, y[, vx, vy])` (last axis)."""
        row, col = state[..., 0], state[..., 1]
        centre = 0.5 + PARTICLE_OFFSET
        out = [col - self.width / 2 + centre, self.height / 2 - centre - row]
        if state.shape[-1] == 4:
            out += [state[..., 3], -state[..., 2]]
        return np.stack(out, axis=-1)

    @staticmethod
    def action_from_d4rl(action: np.ndarray) -> np.ndarray:
        """A force `(a_row, a_col)` in D4RL's frame as gymnasium-robotics' `(a_x, a_y)`."""
        return np.stack([action[..., 1], -action[..., 0]], axis=-1)


def _walls(grid: list[list]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v == 1) for v in row) for row in grid)


MAZES: dict[str, Maze] = {
    "umaze": Maze("umaze", _walls(maps.U_MAZE), (1, 1), 300, 23.85, 161.86, "PointMaze_UMaze-v3", "maze2d-umaze-v1"),
    "medium": Maze(
        "medium", _walls(maps.MEDIUM_MAZE), (6, 6), 600, 13.13, 277.39, "PointMaze_Medium-v3", "maze2d-medium-v1"
    ),
    "large": Maze("large", _walls(maps.LARGE_MAZE), (7, 9), 800, 6.7, 273.99, "PointMaze_Large-v3", "maze2d-large-v1"),
}

ENV_IDS: dict[str, Maze] = {
    env_id: maze for maze in MAZES.values() for env_id in (maze.point_maze_id, maze.d4rl_env_id)
}
