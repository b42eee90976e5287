"""Episodes generated here from a pip-installed simulator, cached under `dataset.save_dir` in the episode layout.

A simulator module supplies `generate_episode(seed, length, size, hold) -> (video (L, size, size, 3) uint8,
actions (L,))`; this module writes the missing episodes of a split, one process per core, under a progress bar.
Each file is written under a temporary name and renamed when complete, so an interrupted generation resumes
with the episodes it lacks. Episode i of a split uses seed `first_seed + i`: generation is deterministic.
`generation.json` in each split folder records what generated it (simulator, seeds, length, render size, action
hold); a folder made with other settings is refused with one line instead of being mixed in, and a folder with
more episodes than configured is read only up to the configured count.
"""

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from utils.typed_config import ConfigError, require

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


GENERATION_FILE = "generation.json"


def check_generation(folder: Path, settings: dict[str, object]) -> None:
    """Record `settings` as what generated `folder`, or refuse a folder generated with other ones."""
    record = folder / GENERATION_FILE
    if record.exists():
        recorded = json.loads(record.read_text())
        if recorded != settings:
            changed = ", ".join(f"{k} {recorded.get(k)} (now {v})" for k, v in settings.items() if recorded.get(k) != v)
            raise ConfigError(
                "dataset.save_dir",
                f"{folder} holds episodes generated with {changed}: delete it or choose another dataset.save_dir",
            )
        return
    if any(folder.glob("*.npz")):
        raise ConfigError(
            "dataset.save_dir",
            f"{folder} holds episodes without a {GENERATION_FILE} saying how they were generated (an older "
            "version's cache): delete it or choose another dataset.save_dir",
        )
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=2))


def generate_split(
    folder: Path, episodes: int, first_seed: int, generate: EpisodeGenerator, name: str, settings: dict[str, object]
) -> None:
    """Write the `episode_XXXXX.npz` files that are missing, one process per CPU core; `settings` (besides the
    simulator's name and first seed) say what else generated them."""
    check_generation(folder, {"simulator": name, "first_seed": first_seed, **settings})
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
        settings = {"length": cfg.episode_length, "size": cfg.render_size, "hold": cfg.action_hold}
        generate = partial(self.generate_episode, **settings)
        generate_split(self.split_dir, episodes, first_seed, generate, self.simulator_name, settings)

    @property
    def episode_count(self) -> int | None:
        cfg = self.config
        configured = cfg.training_episodes if self.split == "training" else cfg.validation_episodes
        return configured if cfg.subset is None else min(cfg.subset, configured)
