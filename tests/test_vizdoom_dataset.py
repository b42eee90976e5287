"""Embedded ViZDoom mazes: deterministic generation at tiny size, persistent actions, training, long rollouts."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from datasets.video.vizdoom_video import VIZDOOM_ACTIONS, generate_episode, persistent_actions
from tests.conftest import tiny_run_overrides


def test_episodes_are_deterministic_by_seed() -> None:
    video, actions = generate_episode(3, 20, 16, 4.0)
    again, actions_again = generate_episode(3, 20, 16, 4.0)
    assert video.shape == (20, 16, 16, 3) and video.dtype == np.uint8 and actions.shape == (20,)
    assert np.array_equal(video, again) and np.array_equal(actions, actions_again)
    assert not np.array_equal(generate_episode(4, 20, 16, 4.0)[0], video)
    assert video.std() > 5, "frames show the maze, not a blank screen"


def test_actions_persist_and_mostly_go_forward() -> None:
    actions = persistent_actions(np.random.default_rng(0), 4000, hold=4.0)
    assert actions[0] == 0 and set(np.unique(actions)) == set(range(VIZDOOM_ACTIONS))
    switches = np.count_nonzero(np.diff(actions))
    assert 400 < switches < 1000, "about one new draw per `hold` steps, some repeating the action"
    assert 0.5 < np.mean(actions == 0) < 0.7


def vizdoom_overrides(tmp_path: Path) -> list[str]:
    return [
        *tiny_run_overrides(tmp_path / "outputs"),
        "dataset=video_vizdoom",
        f"dataset.save_dir={tmp_path / 'vizdoom'}",
        "dataset.training_episodes=2",
        "dataset.validation_episodes=1",
        "dataset.episode_length=64",
        "dataset.render_size=16",
        "algorithm.diffusion.architecture.network_size=8",
        "algorithm.diffusion.architecture.attn_dim_head=8",
        "algorithm.diffusion.architecture.attn_resolutions=[8]",
    ]


def test_two_step_training_then_an_eight_times_longer_rollout(tmp_path: Path, run_main) -> None:
    overrides = vizdoom_overrides(tmp_path)
    run_dir = run_main([*overrides, "experiment.tasks=[training]"])
    assert sorted(p.name for p in (tmp_path / "vizdoom" / "training").iterdir()) == [
        "episode_00000.npz",
        "episode_00001.npz",
        "generation.json",
    ]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    rollout = run_main(
        [*overrides, f"load={checkpoint}", "experiment.tasks=[validation]", "dataset.validation_multiplier=8"]
    )
    (video,) = (rollout / "videos").glob("validation_*.mp4")
    assert len(iio.imread(video, plugin="pyav")) == 4 * 8
    assert list((rollout / "plots").glob("validation_per_frame_step*.png"))
