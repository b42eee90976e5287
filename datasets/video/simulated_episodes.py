"""Episodes generated here from a pip-installed simulator, cached under `dataset.save_dir` in the episode layout.

A simulator module supplies `generate_episode(seed, length, size, hold) -> (video (L, size, size, 3) uint8,
actions (L,))`; this module writes the missing episodes of a split, one process per core, under a progress bar.
Each file is written under a temporary name and renamed when complete, so an interrupted generation resumes
with the episodes it lacks. Episode i of a split uses seed `first_seed + i`: generation is deterministic.
"""

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from utils.typed_config import require

from .episode_dataset import VideoDatasetConfig, VideoEpisodeDataset

EpisodeGenerator = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SimulatedDatasetConfig(VideoDatasetConfig):
    episode_length: int = 300
    render_size: int = 64
    training_episodes: int = 200
    validation_episodes: int = 16
    action_hold: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.episode_length >= 2, "episode_length", "must be >= 2")
        require(self.render_size >= 16, "render_size", f"must be >= 16, got {self.render_size}")
        require(self.training_episodes >= 1, "training_episodes", "must be >= 1")
        require(self.validation_episodes >= 1, "validation_episodes", "must be >= 1")
        require(self.action_hold >= 1, "action_hold", "must be >= 1 (mean steps an action is held)")


def first_full_length(
    seed: int, length: int, rollout: Callable[[int], tuple[list[np.ndarray], np.ndarray]], simulator: str
) -> tuple[np.ndarray, np.ndarray]:
    """(video, actions) of the first rollout, from episode seeds `seed·100 + attempt`, that lasts `length` frames.

    Simulators may end an episode early (death, goal reached); retrying with the next seed keeps every episode
    the same length while generation stays deterministic.
    """
    for attempt in range(100):
        frames, actions = rollout(seed * 100 + attempt)
        if len(frames) == length:
            return np.stack(frames), actions
    raise RuntimeError(f"{simulator}: no full-length episode for seed {seed} after 100 attempts")


def write_episode(folder: Path, index: int, seed: int, generate: EpisodeGenerator) -> None:
    """Generate and save one episode under a temporary name, renamed only once complete."""
    video, actions = generate(seed)
    partial_file = folder / f".episode_{index:05d}.partial.npz"
    np.savez_compressed(partial_file, video=video, actions=actions)
    partial_file.rename(folder / f"episode_{index:05d}.npz")


def generate_split(folder: Path, episodes: int, first_seed: int, generate: EpisodeGenerator, name: str) -> None:
    """Write the `episode_XXXXX.npz` files that are missing, one process per CPU core."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(episodes) if not (folder / f"episode_{i:05d}.npz").exists()]
    if not missing:
        return
    with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(missing))) as pool:
        jobs = [pool.submit(write_episode, folder, i, first_seed + i, generate) for i in missing]
        for job in tqdm(as_completed(jobs), total=len(jobs), desc=f"generating {name} {folder.name}"):
            job.result()


class SimulatedVideoDataset(VideoEpisodeDataset):
    """Generates its split under `save_dir` on first use, deterministically from `seed`."""

    config: SimulatedDatasetConfig
    simulator_name: ClassVar[str]

    @staticmethod
    def generate_episode(seed: int, length: int, size: int, hold: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def prepare(self) -> None:
        cfg = self.config
        training = self.split == "training"
        episodes = cfg.training_episodes if training else cfg.validation_episodes
        first_seed = cfg.seed * 1_000_000 + (0 if training else 500_000)
        generate = partial(self.generate_episode, length=cfg.episode_length, size=cfg.render_size, hold=cfg.action_hold)
        generate_split(self.split_dir, episodes, first_seed, generate, self.simulator_name)
