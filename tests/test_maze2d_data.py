"""maze2d environments, the expert, the generator and the D4RL hdf5 format (loaded from a local HTTP server)."""

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from algorithms.diffusion_forcing.maze_evaluation import EpisodeRunner, ExpertPolicy, episode_metrics
from datasets.maze2d.environment import make_environment, maze_of
from datasets.maze2d.generate import generate, generate_file
from datasets.maze2d.hdf5 import read_hdf5
from datasets.maze2d.maze2d_dataset import EvaluationProtocol, Maze2dDataset, Maze2dDatasetConfig, prepare
from datasets.maze2d.mazes import MAZES
from tests.archive_server import ArchiveServer
from utils.typed_config import ConfigError

MEDIUM_STATS = {"observation_mean": (3.5, 3.5), "observation_std": (1.3, 1.5)}


@pytest.fixture(scope="module")
def medium_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = make_environment("PointMaze_Medium-v3")
    path = generate_file(env, tmp_path_factory.mktemp("maze2d") / "medium.hdf5", 3000, seed=7)
    env.close()
    return path


FIXED = EvaluationProtocol(protocol="fixed")


def test_coordinate_frames_round_trip() -> None:
    maze = MAZES["medium"]  # 8×8: cell (row 1, col 6) is centred at x = 2.5, y = 2.5 in gymnasium-robotics
    np.testing.assert_allclose(maze.from_d4rl(np.array([1.0, 6.0])), [2.7, 2.3])  # D4RL's state is 0.2 past it
    state = np.array([2.3, 4.1, 0.7, -1.2])
    np.testing.assert_allclose(maze.to_d4rl(maze.from_d4rl(state)), state)
    np.testing.assert_allclose(maze.action_from_d4rl(np.array([1.0, 0.0])), [0.0, -1.0])  # +row = −y


def test_environment_speaks_d4rl_frame() -> None:
    env = make_environment("PointMaze_Medium-v3")
    state = env.reset(np.array([1.05, 0.95, 0.1, -0.1]), np.array([6.0, 6.0]))
    np.testing.assert_allclose(state, [1.05, 0.95, 0.1, -0.1], atol=1e-9)
    for _ in range(30):
        state, reward = env.step(np.array([1.0, 0.0]))  # push along +row: down the map, into free cell (2, 1)
    assert state[0] > 1.3 and abs(state[1] - 1.0) < 0.2 and state[2] > 0 and reward == 0.0
    env.reset(np.array([6.0, 5.0, 0.0, 0.0]), np.array([6.0, 5.4]))
    _, reward = env.step(np.zeros(2))
    assert reward == 1.0  # within D4RL's 0.5 of the goal
    env.close()


def test_walls_stand_where_d4rls_particle_offset_puts_them() -> None:
    """D4RL's state is 0.2 past the particle's place in the wall grid: a particle (radius 0.1) pressed into the
    walls of a cell (half-width 0.5) rests at cell − 0.6 on the −row / −col sides and cell + 0.2 on the + sides."""
    env = make_environment("PointMaze_Medium-v3")
    env.reset(np.array([1.0, 1.0, 0.0, 0.0]), np.array([6.0, 6.0]))  # walls above (row 0) and left (col 0)
    for _ in range(200):
        state, _ = env.step(np.array([-1.0, -1.0]))
    np.testing.assert_allclose(state[:2], [0.4, 0.4], atol=0.01)
    env.reset(np.array([1.0, 2.0, 0.0, 0.0]), np.array([6.0, 6.0]))  # wall right of (1, 2): cell (1, 3)
    for _ in range(200):
        state, _ = env.step(np.array([0.0, 1.0]))
    np.testing.assert_allclose(state[:2], [1.0, 2.2], atol=0.01)
    env.close()


def test_unknown_or_unavailable_env_ids_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^dataset.env_id: unknown maze2d environment 'maze2d-tiny-v1'"):
        maze_of("maze2d-tiny-v1")
    try:
        import d4rl  # noqa: F401
    except Exception:
        with pytest.raises(ConfigError, match=r"^dataset.env_id: maze2d-medium-v1 needs d4rl and mujoco-py"):
            make_environment("maze2d-medium-v1")


def test_expert_reaches_the_goal_from_every_protocol_start() -> None:
    config = Maze2dDatasetConfig(env_id="PointMaze_UMaze-v3", episode_len=300, evaluation=FIXED, **MEDIUM_STATS)
    episodes = config.episodes()
    cells = [e.start_cell for e in episodes]
    runner = EpisodeRunner(config.env_id, config.episode_len)
    starts = np.stack([e.start_state for e in episodes])
    batch = runner.run(ExpertPolicy(runner.maze), starts, [config.goal_cell] * len(cells), cells)
    runner.close()
    metrics = episode_metrics(batch.rewards)
    assert metrics["success"].min() == 1.0 and metrics["first_reach"].max() < 200
    assert batch.states.shape == (len(cells), 301, 4)


def test_generator_is_deterministic_and_retargets(medium_file: Path) -> None:
    env = make_environment("PointMaze_Medium-v3")
    first, second = generate(env, 600, seed=3), generate(env, 600, seed=3)
    env.close()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    data = read_hdf5(medium_file, "dataset.save_dir")
    assert data["observations"].shape == (3000, 4) and data["actions"].shape == (3000, 2)
    assert data["terminals"].sum() >= 3  # reached targets were replaced by new ones
    goals = data["infos/goal"]
    assert len(np.unique(goals.round(3), axis=0)) == data["terminals"].sum() + 1
    assert np.abs(data["actions"]).max() <= 1.0
    stats = (medium_file.parent / "medium.hdf5.stats.json").read_text()
    assert '"observation_mean"' in stats and '"action_std"' in stats


def test_training_windows_and_evaluation_episodes(medium_file: Path, tmp_path: Path) -> None:
    config = Maze2dDatasetConfig(
        env_id="PointMaze_Medium-v3",
        save_dir=str(tmp_path),
        dataset_url="http://127.0.0.1:1/unused",
        episode_len=100,
        window_stride=50,
        evaluation=FIXED,
        **MEDIUM_STATS,
    )
    config.path.parent.mkdir(parents=True, exist_ok=True)
    config.path.write_bytes(medium_file.read_bytes())
    training = Maze2dDataset(config, "training")
    assert len(training) == len(range(0, 3000 - 100, 50))
    window = training[1]
    assert window["observations"].shape == (101, 4) and window["actions"].shape == (101, 2)
    validation = Maze2dDataset(config, "validation")
    assert len(validation) == 25  # medium: every free cell but the goal
    assert validation[0]["goal_cell"].tolist() == [6, 6] and validation[3]["start_cell"].tolist() == [1, 6]


def test_hdf5_download_resumes_and_checks_md5(medium_file: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "maze2d-medium-sparse-v1.hdf5").write_bytes(medium_file.read_bytes())
    md5 = hashlib.md5(medium_file.read_bytes()).hexdigest()
    with ArchiveServer(served) as server:
        url = f"{server.url}/maze2d-medium-sparse-v1.hdf5"
        server.drop_after["/maze2d-medium-sparse-v1.hdf5"] = 5000
        config = Maze2dDatasetConfig(save_dir=str(tmp_path / "data"), dataset_url=url, dataset_md5=md5, **MEDIUM_STATS)
        path = prepare(config)  # the connection drops after 5000 bytes: the rest is asked for with a range
        assert [r for _, r in server.requests] == [None, "bytes=5000-"]
        assert read_hdf5(path, "dataset.dataset_url")["observations"].shape == (3000, 4)
        again = Maze2dDatasetConfig(save_dir=str(tmp_path / "again"), dataset_url=url, **MEDIUM_STATS)
        again.path.parent.mkdir()
        again.path.with_name(again.path.name + ".partial").write_bytes(medium_file.read_bytes()[:777])
        prepare(again)  # a partial file from an earlier run is resumed, not restarted
        assert server.requests[-1][1] == "bytes=777-" and again.path.read_bytes() == medium_file.read_bytes()
        wrong = Maze2dDatasetConfig(
            save_dir=str(tmp_path / "other"), dataset_url=url, dataset_md5="0" * 32, **MEDIUM_STATS
        )
        with pytest.raises(
            ConfigError, match=f"^dataset.dataset_url: .* arrived with md5 {md5}, expected 0+; the file"
        ):
            prepare(wrong)
        assert not list((tmp_path / "other").glob("*"))


def test_hdf5_without_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.hdf5"
    with h5py.File(path, "w") as file:
        file["observations"] = np.zeros((10, 4))
        file["actions"] = np.zeros((10, 2))
    with pytest.raises(ConfigError, match=r"^dataset.save_dir: .*broken.hdf5 lacks infos/goal"):
        read_hdf5(path, "dataset.save_dir")
