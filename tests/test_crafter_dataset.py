from pathlib import Path

import numpy as np
import pytest

from datasets.video.crafter_video import (
    CRAFTER_ACTIONS,
    CrafterDatasetConfig,
    CrafterVideoDataset,
    generate_episode,
    persistent_actions,
)
from tests.conftest import TINY_EPISODE_LENGTH, TINY_EPISODES, TINY_RENDER


def test_episodes_are_deterministic_by_seed() -> None:
    video_a, actions_a = generate_episode(7, 12, 32, 4.0)
    video_b, actions_b = generate_episode(7, 12, 32, 4.0)
    assert video_a.shape == (12, 32, 32, 3) and video_a.dtype == np.uint8
    assert np.array_equal(video_a, video_b) and np.array_equal(actions_a, actions_b)
    assert not np.array_equal(generate_episode(8, 12, 32, 4.0)[0], video_a)


def test_episodes_are_identical_across_processes() -> None:
    """Crafter orders creatures by memory address; generation must not (two fresh processes, one episode)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = (
        "import hashlib, numpy as np; from datasets.video.crafter_video import rollout; "
        "frames, actions = rollout(12345, 120, 64, 4.0); video = np.stack(frames); "
        "print(hashlib.md5(video.tobytes() + actions.tobytes()).hexdigest())"
    )
    hashes = {
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for _ in range(3)
    }
    assert len(hashes) == 1, hashes


def test_actions_persist() -> None:
    actions = persistent_actions(np.random.default_rng(0), 2000, hold=5.0)
    assert actions[0] == 0 and actions.max() < CRAFTER_ACTIONS and 6 not in actions
    switches = np.count_nonzero(np.diff(actions[1:]))
    assert 200 < switches < 500, "about one switch per `hold` steps (some draws repeat the action)"


def test_layout_and_items(crafter_dir: Path) -> None:
    for split, count in TINY_EPISODES.items():
        files = sorted((crafter_dir / split).glob("episode_*.npz"))
        assert len(files) == count
        with np.load(files[0]) as episode:
            assert episode["video"].shape == (TINY_EPISODE_LENGTH, TINY_RENDER, TINY_RENDER, 3)
            assert episode["actions"].shape == (TINY_EPISODE_LENGTH,)
    config = CrafterDatasetConfig(
        save_dir=str(crafter_dir),
        resolution=16,
        n_frames=4,
        frame_skip=2,
        external_cond_dim=CRAFTER_ACTIONS,
        training_episodes=3,
        validation_episodes=2,
        episode_length=TINY_EPISODE_LENGTH,
        render_size=TINY_RENDER,
        validation_multiplier=2,
    )
    training = CrafterVideoDataset(config, "training")
    assert len(training) == 3 * (TINY_EPISODE_LENGTH - 7 + 1), "every start whose 7-frame span fits"
    item = training[5]
    assert item["videos"].shape == (4, 3, 16, 16)
    assert -1 <= item["videos"].min() and item["videos"].max() <= 1
    assert item["actions"].shape == (4, CRAFTER_ACTIONS) and np.all(item["actions"].sum(-1).numpy() == 1)
    validation = CrafterVideoDataset(config, "validation")
    assert len(validation) == 2 and validation[0]["videos"].shape == (8, 3, 16, 16)


def test_interrupted_generation_is_completed(tmp_path: Path) -> None:
    config = CrafterDatasetConfig(
        save_dir=str(tmp_path),
        resolution=16,
        n_frames=2,
        training_episodes=2,
        validation_episodes=1,
        episode_length=6,
        render_size=32,
    )
    CrafterVideoDataset(config, "validation")
    first = tmp_path / "validation" / "episode_00000.npz"
    stamp = first.stat().st_mtime_ns
    (tmp_path / "validation" / ".episode_00001.partial.npz").write_bytes(b"half")
    grown = CrafterDatasetConfig(**{**config.__dict__, "validation_episodes": 2})
    dataset = CrafterVideoDataset(grown, "validation")
    assert len(dataset) == 2 and first.stat().st_mtime_ns == stamp, "existing episodes are kept"


def test_missing_data_dir_is_a_config_error(tmp_path: Path) -> None:
    from datasets.video.episode_dataset import VideoDatasetConfig, VideoEpisodeDataset
    from utils.typed_config import ConfigError

    with pytest.raises(ConfigError, match="dataset.save_dir: no episodes"):
        VideoEpisodeDataset(VideoDatasetConfig(save_dir=str(tmp_path), resolution=16, n_frames=2), "training")


def small_crafter(save_dir: Path, **changes: object) -> CrafterDatasetConfig:
    settings = dict(save_dir=str(save_dir), resolution=16, n_frames=2, validation_episodes=2, episode_length=6)
    return CrafterDatasetConfig(**{**settings, "render_size": 32, **changes})


def test_a_cache_generated_with_other_settings_is_refused(tmp_path: Path) -> None:
    from utils.typed_config import ConfigError

    CrafterVideoDataset(small_crafter(tmp_path), "validation")
    with pytest.raises(ConfigError, match=r"dataset.save_dir: .* generated with size 32 \(now 48\)"):
        CrafterVideoDataset(small_crafter(tmp_path, render_size=48), "validation")
    with pytest.raises(ConfigError, match=r"generated with first_seed 500000 \(now 1500000\)"):
        CrafterVideoDataset(small_crafter(tmp_path, seed=1), "validation")


def test_a_cache_with_more_episodes_is_read_up_to_the_configured_count(tmp_path: Path) -> None:
    CrafterVideoDataset(small_crafter(tmp_path, validation_episodes=3), "validation")
    assert len(CrafterVideoDataset(small_crafter(tmp_path, validation_episodes=2), "validation")) == 2


def test_an_unrecorded_cache_is_refused(tmp_path: Path) -> None:
    from utils.typed_config import ConfigError

    (tmp_path / "validation").mkdir()
    np.savez(tmp_path / "validation" / "episode_00000.npz", video=np.zeros((6, 32, 32, 3)), actions=np.zeros(6))
    with pytest.raises(ConfigError, match="without a generation.json"):
        CrafterVideoDataset(small_crafter(tmp_path), "validation")
