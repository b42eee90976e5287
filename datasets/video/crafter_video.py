"""`dataset=video_crafter`: the embedded default, episodes generated here from the `crafter` simulator.

Crafter (Hafner 2021) is a 2D Minecraft-like open world. A random-but-persistent policy (hold an action for a
geometric number of steps, mostly moving) explores it; the agent's health is refilled every step so episodes last
`episode_length` frames like TECO's, and the rare episode that still ends (walking into lava) is regenerated
from the next seed. Frame t is the observation after action t (action 0 is a no-op before the first frame).
"""

from dataclasses import dataclass
from functools import partial

import numpy as np

from utils.typed_config import require

from .simulated_episodes import SimulatedDatasetConfig, SimulatedVideoDataset, first_full_length

CRAFTER_ACTIONS = 17
MOVE_ACTIONS = (1, 2, 3, 4)
SLEEP_ACTION = 6


@dataclass(frozen=True)
class CrafterDatasetConfig(SimulatedDatasetConfig):
    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.render_size >= 32,
            "render_size",
            f"must be >= 32 (crafter draws a 9x9 tile view), got {self.render_size}",
        )


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


def rollout(episode_seed: int, length: int, size: int, hold: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames until the episode ends or reaches `length`, and the actions drawn for it."""
    import crafter

    class ReproducibleEnv(crafter.Env):
        """Crafter keeps each chunk's creatures in a set, ordered by memory address, and despawns the i-th of
        them: which one differed between processes. Handing them over sorted by position fixes the order."""

        def _balance_object(self, chunk: tuple, objs: set, *args: object) -> None:
            super()._balance_object(chunk, sorted(objs, key=lambda obj: tuple(obj.pos)), *args)

    actions = persistent_actions(np.random.default_rng(episode_seed), length, hold)
    env = ReproducibleEnv(size=(size, size), seed=episode_seed, reward=False)
    frames = [env.reset()]
    for action in actions[1:]:
        observation, _, done, _ = env.step(int(action))
        env._player.health = 9  # keep the agent alive so the episode has a fixed length
        frames.append(observation)
        if done:
            break
    return frames, actions


def generate_episode(seed: int, length: int, size: int, hold: float) -> tuple[np.ndarray, np.ndarray]:
    """One full-length episode (video (L, size, size, 3) uint8, actions (L,)), deterministic in `seed`."""
    return first_full_length(seed, length, partial(rollout, length=length, size=size, hold=hold), "crafter")


class CrafterVideoDataset(SimulatedVideoDataset):
    simulator_name = "crafter"
    generate_episode = staticmethod(generate_episode)
