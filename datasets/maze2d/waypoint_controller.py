"""D4RL's expert for maze2d: PD control through the cell centres of a shortest path to the target.

It generates the datasets (chasing random targets) and is the reference expert of the evaluation: the same
controller, driven by the same code path as the planner, gives the `max` of the normalised score.
"""

import numpy as np

from datasets.maze2d.mazes import Maze

P_GAIN = 10.0
D_GAIN = -1.0
REACHED = 0.1  # D4RL's solve threshold: a waypoint (or the target) counts as reached this close
D4RL_WAYPOINT_JITTER = 0.2  # D4RL: intermediate waypoints are cell centres minus U(0, 0.2) per axis


def pd_action(waypoint: np.ndarray, position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Force toward `waypoint`, damped by the velocity, clipped to the action range."""
    return np.clip(P_GAIN * (waypoint - position) + D_GAIN * velocity, -1.0, 1.0)


class WaypointController:
    """Follows the cell centres of a BFS path, planned once per target as D4RL does (no replanning).

    `jitter` shifts each intermediate waypoint by −U(0, jitter) per axis, D4RL's way of varying the data's paths;
    evaluation uses 0.
    """

    def __init__(
        self, maze: Maze, rng: np.random.Generator | np.random.RandomState | None = None, jitter: float = 0.0
    ) -> None:
        self.maze = maze
        self.rng = rng or np.random.default_rng(0)
        self.jitter = jitter
        self._target: np.ndarray | None = None
        self._waypoints: list[np.ndarray] = []

    def _plan(self, position: np.ndarray, target: np.ndarray) -> None:
        goal_cell = self.maze.cell_of(target)
        cells = self.maze.shortest_path(self.maze.cell_of(position), goal_cell)
        self._waypoints = [
            np.array(cell, dtype=float) - self.rng.uniform(size=2) * self.jitter for cell in cells if cell != goal_cell
        ] + [np.asarray(target, dtype=float)]
        self._target = np.asarray(target, dtype=float).copy()

    def act(self, state: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, bool]:
        """The action for `state` (4,) and whether the target is reached."""
        position, velocity = state[:2], state[2:4]
        if self._target is None or not np.allclose(self._target, target):
            self._plan(position, target)
        if len(self._waypoints) > 1 and np.linalg.norm(self._waypoints[0] - position) < REACHED:
            self._waypoints.pop(0)
        reached = bool(np.linalg.norm(position - self._target) < REACHED)
        return pd_action(self._waypoints[0], position, velocity), reached
