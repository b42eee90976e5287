"""`dataset=maze2d_{umaze,medium,large}`: D4RL maze2d data for training, a fixed episode list for evaluation.

Training samples are windows of `episode_len + 1` consecutive states (and actions) of the dataset's single long
trajectory, as in DF v1.5. The file is downloaded from `dataset_url` when one is set (D4RL's own files, kept as
`<save_dir>/maze2d-<maze>-sparse-v1.hdf5`), else generated here with D4RL's recipe (`generate.py`).

Validation and test are the evaluation protocol, the same episodes for every method and every run, toward the
maze's goal cell (D4RL's `G`):
- `evaluation.protocol=d4rl` (default): `evaluation.episodes` starts drawn as D4RL's `env.seed(seed)` + `env.reset()`
  drew them (uniform over the free cells, goal cell included; old gym's seeded stream), scored over D4RL's episode
  length: the episodes that D4RL's `REF_MIN` / `REF_MAX` come from, so `normalized_score` is on the paper's scale;
- `evaluation.protocol=fixed`: every cell of `evaluation.start_cells` (empty = every free cell but the goal's),
  `evaluation.episodes_per_start` times each, toward `evaluation.goal_cell`.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from datasets.download import download_file
from datasets.maze2d.environment import make_environment, maze_of, start_state
from datasets.maze2d.generate import generate_file
from datasets.maze2d.hdf5 import read_hdf5
from datasets.maze2d.legacy_gym_seeding import legacy_gym_random_state
from datasets.maze2d.mazes import ENV_IDS, Cell, Maze
from utils.typed_config import ConfigError, require

log = logging.getLogger(__name__)

Split = Literal["training", "validation", "test"]


@dataclass(frozen=True)
class EvaluationProtocol:
    """`dataset.evaluation.*`: which episodes every method is scored on (see the module docstring)."""

    protocol: Literal["d4rl", "fixed"] = "d4rl"
    episodes: int = 100  # d4rl: D4RL's reference scripts ran 100
    start_cells: tuple[tuple[int, int], ...] = ()  # fixed: empty = every free cell except the goal's
    goal_cell: tuple[int, ...] = ()  # empty = the maze's `G` cell (D4RL's evaluation goal)
    episodes_per_start: int = 1  # fixed
    seed: int = 0  # d4rl: D4RL's `env.seed(0)`; fixed: the first episode's seed

    def __post_init__(self) -> None:
        require(self.episodes >= 1, "evaluation.episodes", "must be >= 1")
        require(self.episodes_per_start >= 1, "evaluation.episodes_per_start", "must be >= 1")
        require(self.seed >= 0, "evaluation.seed", f"must be >= 0, got {self.seed}")
        if self.protocol == "d4rl":
            require(
                not self.start_cells,
                "evaluation.start_cells",
                "applies to evaluation.protocol=fixed; the d4rl protocol draws its starts as D4RL did",
            )


@dataclass(frozen=True)
class EvaluationEpisode:
    """One episode of the protocol: where it starts (cell and exact state (4,)) and the seed of its planner."""

    start_cell: Cell
    start_state: np.ndarray
    seed: int


@dataclass(frozen=True)
class Maze2dDatasetConfig:
    env_id: str = "PointMaze_Medium-v3"
    save_dir: str = "data/maze2d"
    dataset_url: str | None = None  # e.g. D4RL's http://rail.eecs.berkeley.edu/datasets/offline_rl/maze2d/…hdf5
    dataset_md5: str | None = None  # checked after a download when given
    generated_steps: int = 1_000_000  # D4RL: 1M (umaze, medium), 4M (large)
    generator_seed: int = 0
    action_noise: float = 0.0  # std of D4RL's `--noisy` action noise (0.5 there)
    episode_len: int = 600
    window_stride: int = 1
    observation_mean: tuple[float, ...] = ()
    observation_std: tuple[float, ...] = ()
    action_mean: tuple[float, ...] = ()
    action_std: tuple[float, ...] = ()
    evaluation: EvaluationProtocol = field(default_factory=EvaluationProtocol)

    def __post_init__(self) -> None:
        require(
            self.env_id in ENV_IDS,
            "env_id",
            f"unknown maze2d environment {self.env_id!r}; use one of: {', '.join(ENV_IDS)}",
        )
        maze = maze_of(self.env_id)
        require(self.episode_len >= 1, "episode_len", f"must be >= 1, got {self.episode_len}")
        require(self.generated_steps > self.episode_len, "generated_steps", "must exceed episode_len")
        require(self.window_stride >= 1, "window_stride", f"must be >= 1, got {self.window_stride}")
        for name, allowed in (("observation", (2, 4)), ("action", (0, 2))):
            mean, std = getattr(self, f"{name}_mean"), getattr(self, f"{name}_std")
            require(
                len(mean) == len(std),
                f"{name}_std",
                f"has {len(std)} entries but {name}_mean has {len(mean)}; give one per modelled dimension",
            )
            require(
                len(mean) in allowed,
                f"{name}_mean",
                f"must have {' or '.join(map(str, allowed))} entries "
                f"({'(row, col) or (row, col, v_row, v_col)' if name == 'observation' else '[] = no actions'}), "
                f"got {len(mean)}",
            )
            require(all(s > 0 for s in std), f"{name}_std", f"must be > 0, got {list(std)}")
        if self.evaluation.protocol == "d4rl":
            require(
                self.episode_len == maze.max_episode_steps,
                "episode_len",
                f"the d4rl evaluation protocol scores D4RL's {maze.max_episode_steps}-step episodes of maze2d-"
                f"{maze.name}, got {self.episode_len}; set it, or dataset.evaluation.protocol=fixed",
            )
            require(
                not self.evaluation.goal_cell or tuple(self.evaluation.goal_cell) == maze.goal_cell,
                "evaluation.goal_cell",
                f"the d4rl protocol's goal is D4RL's, {list(maze.goal_cell)}; "
                "other goals need evaluation.protocol=fixed",
            )
        for cell in (*self.evaluation.start_cells, *([self.evaluation.goal_cell] if self.evaluation.goal_cell else [])):
            require(
                len(cell) == 2 and maze.is_free(tuple(cell)),
                "evaluation",
                f"cell {list(cell)} is not a free cell of maze2d-{maze.name}; "
                f"free cells: {[list(c) for c in maze.free_cells]}",
            )

    @property
    def maze(self) -> Maze:
        return maze_of(self.env_id)

    @property
    def path(self) -> Path:
        """D4RL's file name for a download; generated files name their size and seed."""
        folder, name = Path(self.save_dir).expanduser(), self.maze.name
        if self.dataset_url:
            return folder / f"maze2d-{name}-sparse-v1.hdf5"
        noisy = f"-noise{self.action_noise:g}" if self.action_noise else ""
        return folder / f"maze2d-{name}-v1-generated-{self.generated_steps}-seed{self.generator_seed}{noisy}.hdf5"

    @property
    def goal_cell(self) -> tuple[int, int]:
        goal = self.evaluation.goal_cell
        return (goal[0], goal[1]) if goal else self.maze.goal_cell

    @property
    def start_cells(self) -> list[tuple[int, int]]:
        cells = self.evaluation.start_cells or [c for c in self.maze.free_cells if c != self.goal_cell]
        return [(int(c[0]), int(c[1])) for c in cells]

    def episodes(self) -> list[EvaluationEpisode]:
        """Every evaluation episode, in a fixed order."""
        protocol = self.evaluation
        if protocol.protocol == "d4rl":
            # D4RL's reset locations: its empty cells in sorted order, then the goal cell
            cells = [c for c in self.maze.free_cells if c != self.maze.goal_cell] + [self.maze.goal_cell]
            rng = legacy_gym_random_state(protocol.seed)
            episodes = []
            for k in range(protocol.episodes):
                cell = cells[rng.choice(len(cells))]
                episodes.append(EvaluationEpisode(cell, start_state(cell, rng), protocol.seed * 100_000 + k))
            return episodes
        episodes = []
        for i, cell in enumerate(self.start_cells):
            for repeat in range(protocol.episodes_per_start):
                seed = protocol.seed * 100_000 + i * protocol.episodes_per_start + repeat
                episodes.append(EvaluationEpisode(cell, start_state(cell, np.random.default_rng(seed)), seed))
        return episodes


def prepare(config: Maze2dDatasetConfig) -> Path:
    """The dataset file: already there, downloaded from `dataset_url`, or generated."""
    path = config.path
    if path.exists():
        return path
    if config.dataset_url:
        download_file(config.dataset_url, path, "dataset.dataset_url", md5=config.dataset_md5)
        return path
    log.info("generating %d steps of maze2d-%s into %s", config.generated_steps, config.maze.name, path)
    environment = make_environment(config.maze.point_maze_id)
    try:
        generate_file(environment, path, config.generated_steps, config.generator_seed, config.action_noise)
    finally:
        environment.close()
    return path


class Maze2dDataset(Dataset):
    """Training windows (observations (L+1, 4), actions (L+1, 2)) or evaluation episodes (start, goal, seed)."""

    def __init__(self, config: Maze2dDatasetConfig, split: Split) -> None:
        self.config = config
        self.split = split
        if split == "training":
            data = read_hdf5(prepare(config), "dataset.dataset_url" if config.dataset_url else "dataset.save_dir")
            self.observations = torch.from_numpy(data["observations"])
            self.actions = torch.from_numpy(data["actions"])
            windows = len(self.observations) - config.episode_len
            if windows < 1:
                raise ConfigError(
                    "dataset.episode_len",
                    f"{config.episode_len} needs more than {len(self.observations)} steps in {config.path}",
                )
            self.starts = np.arange(0, windows, config.window_stride)
        else:
            self.episodes = config.episodes()

    def __len__(self) -> int:
        return len(self.starts) if self.split == "training" else len(self.episodes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.split == "training":
            window = slice(int(self.starts[index]), int(self.starts[index]) + self.config.episode_len + 1)
            return {"observations": self.observations[window], "actions": self.actions[window]}
        episode = self.episodes[index]
        return {
            "start_cell": torch.tensor(episode.start_cell),
            "start_state": torch.from_numpy(episode.start_state),
            "goal_cell": torch.tensor(self.config.goal_cell),
            "seed": torch.tensor(episode.seed),
        }
