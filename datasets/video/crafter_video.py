"""`dataset=video_crafter`: the embedded default, episodes generated here from the `crafter` simulator.

Crafter (Hafner 2021) is a 2D Minecraft-like open world. A random-but-persistent policy (hold an action for a
geometric number of steps, mostly moving) explores it; the agent's health is refilled every step so episodes last
`episode_length` frames like TECO's, and the rare episode that still ends (walking into lava) is regenerated
from the next seed. Frame t is the observation after action t (action 0 is a no-op before the first frame).
"""

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from utils.typed_config import require

from .episode_dataset import Split, VideoDatasetConfig, VideoEpisodeDataset

CRAFTER_ACTIONS = 17
MOVE_ACTIONS = (1, 2, 3, 4)
SLEEP_ACTION = 6


@dataclass(frozen=True)
class CrafterDatasetConfig(VideoDatasetConfig):
    episode_length: int = 300
    render_size: int = 64
    training_episodes: int = 200
    validation_episodes: int = 16
    action_hold: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.episode_length >= 2, "episode_length", "must be >= 2")
        require(
            self.render_size >= 32,
            "render_size",
            f"must be >= 32 (crafter draws a 9x9 tile view), got {self.render_size}",
        )
        require(self.training_episodes >= 1, "training_episodes", "must be >= 1")
        require(self.validation_episodes >= 1, "validation_episodes", "must be >= 1")
        require(self.action_hold >= 1, "action_hold", "must be >= 1 (mean steps an action is held)")


def persistent_actions(rng: np.random.Generator, length: int, hold: float) -> np.ndarray:
    """Actions held for geometric durations: 70% moves, 15% 'do', 10% no-op, 5% anything but sleep."""
    actions = np.zeros(length, dtype=np.int64)
    current = 0
    for t in range(1, length):
        if t == 1 or rng.random() < 1 / hold:
            draw = rng.random()
            if draw < 0.7:
                current = int(rng.choice(MOVE_ACTIONS))
            elif draw < 0.85:
                current = 5
            elif draw < 0.95:
                current = 0
            else:
                current = int(rng.choice([a for a in range(7, CRAFTER_ACTIONS)]))
        actions[t] = current
    return actions


def generate_episode(seed: int, length: int, size: int, hold: float) -> tuple[np.ndarray, np.ndarray]:
    """One full-length episode (video (L, size, size, 3) uint8, actions (L,)) from the first seed that survives."""
    import crafter

    for attempt in range(100):
        episode_seed = seed * 100 + attempt
        rng = np.random.default_rng(episode_seed)
        actions = persistent_actions(rng, length, hold)
        env = crafter.Env(size=(size, size), seed=episode_seed, reward=False)
        frames = [env.reset()]
        for action in actions[1:]:
            observation, _, done, _ = env.step(int(action))
            env._player.health = 9  # keep the agent alive so the episode has a fixed length
            frames.append(observation)
            if done:
                break
        if len(frames) == length:
            return np.stack(frames), actions
    raise RuntimeError(f"crafter: no surviving episode for seed {seed} after 100 attempts")


def write_episode(folder: Path, index: int, seed: int, length: int, size: int, hold: float) -> None:
    """Generate and save one episode under a temporary name, renamed only once complete."""
    video, actions = generate_episode(seed, length, size, hold)
    partial = folder / f".episode_{index:05d}.partial.npz"
    np.savez_compressed(partial, video=video, actions=actions)
    partial.rename(folder / f"episode_{index:05d}.npz")


def generate_split(folder: Path, episodes: int, first_seed: int, length: int, size: int, hold: float) -> None:
    """Write the `episode_XXXXX.npz` files that are missing, one process per CPU core."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(episodes) if not (folder / f"episode_{i:05d}.npz").exists()]
    if not missing:
        return
    with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(missing))) as pool:
        jobs = [pool.submit(write_episode, folder, i, first_seed + i, length, size, hold) for i in missing]
        for job in tqdm(as_completed(jobs), total=len(jobs), desc=f"generating crafter {folder.name}"):
            job.result()


class CrafterVideoDataset(VideoEpisodeDataset):
    """Generates its split under `save_dir` on first use, deterministically from `seed`."""

    config: CrafterDatasetConfig

    def __init__(self, config: CrafterDatasetConfig, split: Split) -> None:
        super().__init__(config, split)

    def prepare(self) -> None:
        cfg = self.config
        training = self.split == "training"
        episodes = cfg.training_episodes if training else cfg.validation_episodes
        first_seed = cfg.seed * 1_000_000 + (0 if training else 500_000)
        generate_split(self.split_dir, episodes, first_seed, cfg.episode_length, cfg.render_size, cfg.action_hold)
