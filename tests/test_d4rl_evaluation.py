"""The d4rl evaluation protocol reproduces the episodes and the constants of D4RL's reference scripts."""

import numpy as np
import pytest

from algorithms.diffusion_forcing.maze_evaluation import EpisodeRunner, d4rl_reference_returns
from datasets.maze2d.legacy_gym_seeding import legacy_gym_random_state
from datasets.maze2d.maze2d_dataset import EvaluationProtocol, Maze2dDatasetConfig
from datasets.maze2d.mazes import MAZES
from utils.typed_config import ConfigError

STATS = {"observation_mean": (0.0, 0.0), "observation_std": (1.0, 1.0)}


def d4rl_config(maze: str, **evaluation: object) -> Maze2dDatasetConfig:
    m = MAZES[maze]
    protocol = EvaluationProtocol(**evaluation)
    return Maze2dDatasetConfig(env_id=m.point_maze_id, episode_len=m.max_episode_steps, evaluation=protocol, **STATS)


def test_legacy_seeding_matches_gym_0_17() -> None:
    """Values printed by gym 0.17.3's own `seeding.np_random(seed)[0]` (its sdist's gym/utils/seeding.py)."""
    rng = legacy_gym_random_state(0)
    assert rng.choice(8) == 0
    np.testing.assert_allclose(rng.uniform(-0.1, 0.1, size=2), [-0.05121353, -0.05430903], atol=1e-8)
    np.testing.assert_allclose(rng.randn(2), [-0.35218329, -0.43024908], atol=1e-8)
    seven = legacy_gym_random_state(7).uniform(size=3)
    np.testing.assert_allclose(seven, [0.27522696, 0.91868131, 0.3961952], atol=1e-8)


def test_d4rl_protocol_starts_where_d4rls_reset_did() -> None:
    """Sorted empty cells then the goal, a cell per `choice`, then U(±0.1) and N(0, 0.1²) from the same stream."""
    episodes = d4rl_config("umaze").episodes()
    assert len(episodes) == 100 and [e.start_cell for e in episodes[:5]] == [(1, 2), (3, 1), (1, 3), (1, 1), (3, 2)]
    np.testing.assert_allclose(
        episodes[0].start_state, [1 - 0.05121353, 2 - 0.05430903, -0.035218329, -0.043024908], atol=1e-8
    )
    assert {e.start_cell for e in episodes} == set(MAZES["umaze"].free_cells)  # the goal cell is a start too
    medium = d4rl_config("medium", episodes=3).episodes()
    assert [e.start_cell for e in medium] == [(4, 6), (1, 6), (5, 1)] and [e.seed for e in medium] == [0, 1, 2]


@pytest.mark.parametrize(
    ("evaluation", "episode_len", "message"),
    [
        ({"start_cells": ((1, 1),)}, 600, "^evaluation.start_cells: applies to evaluation.protocol=fixed"),
        ({}, 100, "^episode_len: the d4rl evaluation protocol scores D4RL's 600-step episodes"),
        ({"goal_cell": (1, 1)}, 600, r"^evaluation.goal_cell: the d4rl protocol's goal is D4RL's, \[6, 6\]"),
    ],
)
def test_d4rl_protocol_refuses_what_it_cannot_score(evaluation: dict, episode_len: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Maze2dDatasetConfig(episode_len=episode_len, evaluation=EvaluationProtocol(**evaluation), **STATS)


def reference_returns_of(maze: str) -> tuple[np.ndarray, np.ndarray]:
    config = d4rl_config(maze)
    episodes = config.episodes()
    runner = EpisodeRunner(config.env_id, config.episode_len)
    starts = np.stack([e.start_state for e in episodes])
    try:
        return d4rl_reference_returns(runner, starts, [config.goal_cell] * len(episodes))
    finally:
        runner.close()


def assert_reproduces_d4rl_constants(maze: str) -> None:
    """REF_MAX within ±5 % (measured: within 0.1 %); REF_MIN within two standard errors of our 100 episodes'
    mean (a random walk's returns depend on contact details of the MuJoCo version: measured 23.70 / 14.87 / 7.03
    against 23.85 / 13.13 / 6.70, standard errors 5.0 / 4.0 / 3.6)."""
    random, expert = reference_returns_of(maze)
    constants = MAZES[maze]
    assert expert.mean() == pytest.approx(constants.d4rl_ref_max_score, rel=0.05)
    assert abs(random.mean() - constants.d4rl_ref_min_score) <= 2 * random.std() / np.sqrt(len(random))


def test_umaze_reference_scripts_reproduce_d4rls_constants() -> None:
    assert_reproduces_d4rl_constants("umaze")


@pytest.mark.slow
@pytest.mark.parametrize("maze", ["medium", "large"])
def test_medium_and_large_reference_scripts_reproduce_d4rls_constants(maze: str) -> None:
    assert_reproduces_d4rl_constants(maze)
