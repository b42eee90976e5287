"""maze2d environments behind one adapter that speaks D4RL's frame: states `(row, col, v_row, v_col)`, actions
`(a_row, a_col)` in [-1, 1], a goal given separately, D4RL's sparse reward (1 within 0.5 of the goal).

`dataset.env_id` picks the simulator: `PointMaze_{UMaze,Medium,Large}-v3` (gymnasium-robotics on MuJoCo's own
bindings, headless, the default; D4RL's physics, with its particle offset — see `mazes.py`) or
`maze2d-{umaze,medium,large}-v1` (D4RL on mujoco-py, optional). Episodes start from a given state: `start_state`
draws one the way D4RL's reset does, around a cell.
"""

from typing import Protocol

import numpy as np

from datasets.maze2d.mazes import ENV_IDS, Cell, Maze
from utils.typed_config import ConfigError

SUCCESS_RADIUS = 0.5  # D4RL's sparse reward radius (gymnasium-robotics uses 0.45)
RESET_NOISE = 0.1  # D4RL's reset position noise, ± per axis (gymnasium-robotics uses 0.25)
RESET_VELOCITY_STD = 0.1


def sparse_reward(position: np.ndarray, goal: np.ndarray) -> float:
    return float(np.linalg.norm(position[:2] - goal) <= SUCCESS_RADIUS)


def start_state(cell: Cell, rng: np.random.Generator | np.random.RandomState) -> np.ndarray:
    """D4RL's reset around `cell`: position = cell + U(±0.1) per axis, velocity = N(0, 0.1²); in that draw order."""
    position = np.array(cell, dtype=float) + rng.uniform(-RESET_NOISE, RESET_NOISE, size=2)
    velocity = rng.standard_normal(2) * RESET_VELOCITY_STD
    return np.concatenate([position, velocity])


class MazeEnvironment(Protocol):
    """What evaluation and data generation need from a maze2d simulator, in D4RL's frame."""

    maze: Maze
    goal: np.ndarray

    def reset(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Start in `state` (4,) with `goal` as target; the first state (4,)."""

    def set_goal(self, goal: np.ndarray) -> None:
        """Move the target without resetting the agent (D4RL's `set_target`)."""

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        """Apply one action; the next state and its sparse reward."""

    def close(self) -> None: ...


class PointMazeEnvironment:
    """gymnasium-robotics PointMaze v3 (same walls and physics as D4RL maze2d) converted to D4RL's frame."""

    def __init__(self, maze: Maze) -> None:
        import gymnasium as gym
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        self.maze = maze
        # unwrapped: episode length, goal and resets are ours; continuing_task keeps reaching the goal non-terminal
        self._env = gym.make(maze.point_maze_id, continuing_task=True, reset_target=False).unwrapped
        self.goal = np.zeros(2)

    def reset(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        self._env.reset(seed=0)
        xy = self.maze.from_d4rl(np.asarray(state, dtype=float))
        self._env.point_env.set_state(xy[:2], xy[2:])
        self.set_goal(goal)
        return self._state()

    def set_goal(self, goal: np.ndarray) -> None:
        self.goal = np.asarray(goal, dtype=float).copy()
        self._env.goal = self.maze.from_d4rl(self.goal)
        self._env.update_target_site_pos()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        self._env.step(self.maze.action_from_d4rl(np.clip(action, -1.0, 1.0)))
        state = self._state()
        return state, sparse_reward(state, self.goal)

    def _state(self) -> np.ndarray:
        data = self._env.point_env.data
        return self.maze.to_d4rl(np.concatenate([data.qpos, data.qvel]))

    def close(self) -> None:
        self._env.close()


class D4rlEnvironment:
    """D4RL's own maze2d-*-v1 (needs `pip install -r extra_requirements.txt` and MuJoCo 2.1 for mujoco-py)."""

    def __init__(self, maze: Maze) -> None:
        try:
            import d4rl  # noqa: F401  (registers the maze2d environments)
            import gym
        except Exception as error:  # d4rl raises a bare Exception when mujoco-py cannot load
            raise ConfigError(
                "dataset.env_id",
                f"{maze.d4rl_env_id} needs d4rl and mujoco-py, which do not import here ({error}); "
                f"install extra_requirements.txt or use dataset.env_id={maze.point_maze_id}",
            ) from None
        self.maze = maze
        self._env = gym.make(maze.d4rl_env_id).unwrapped
        self.goal = np.zeros(2)

    def reset(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        self._env.reset()
        self._env.set_state(np.asarray(state[:2], dtype=float), np.asarray(state[2:], dtype=float))
        self.set_goal(goal)
        return np.asarray(self._env._get_obs(), dtype=float)

    def set_goal(self, goal: np.ndarray) -> None:
        self.goal = np.asarray(goal, dtype=float).copy()
        self._env.set_target(self.goal)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        state, _, _, _ = self._env.step(np.clip(action, -1.0, 1.0))
        state = np.asarray(state, dtype=float)
        return state, sparse_reward(state, self.goal)

    def close(self) -> None:
        self._env.close()


def maze_of(env_id: str) -> Maze:
    """The maze behind `dataset.env_id`, or a `ConfigError` listing the valid ids."""
    if env_id not in ENV_IDS:
        raise ConfigError("dataset.env_id", f"unknown maze2d environment {env_id!r}; use one of: {', '.join(ENV_IDS)}")
    return ENV_IDS[env_id]


def make_environment(env_id: str) -> MazeEnvironment:
    maze = maze_of(env_id)
    return D4rlEnvironment(maze) if env_id == maze.d4rl_env_id else PointMazeEnvironment(maze)
