"""The seed README's sampling command lines run as written with `load=` on DF v1.5 checkpoints (the tiny fixtures),
and training continues from one; checkpoints this project cannot read are refused in one line."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.archive_server import dmlab_episode
from tests.test_original_checkpoints import FIXTURES
from utils.typed_config import ConfigError

VIDEO = FIXTURES / "df15_video_tiny.ckpt"
PLANNER = FIXTURES / "df15_planner_tiny.ckpt"
QUICK_START = ["+name=sample_minecraft_pretrained", f"load={VIDEO}", "experiment.tasks=[validation]"]
MAZE_SAMPLING = (
    "experiment=exp_planning algorithm=df_planning dataset=maze2d_medium dataset.action_mean=[] "
    "dataset.action_std=[] dataset.observation_mean=[3.5092521,3.4765592] dataset.observation_std=[1.3371079,1.52102] "
    f"load={PLANNER} experiment.tasks=[validation] algorithm.guidance_scale=3 +name=maze2d_medium_x_sampling"
).split()
needs_fixtures = pytest.mark.skipif(not VIDEO.is_file() or not PLANNER.is_file(), reason=f"no fixtures in {FIXTURES}")


def fixture_overrides(checkpoint: Path) -> list[str]:
    return checkpoint.with_suffix(".overrides").read_text().split()


@pytest.fixture
def dmlab_dir(tmp_path: Path) -> Path:
    """A few episodes in TECO's DMLab layout (64² npz with actions)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 2)):
        (tmp_path / "dmlab" / split).mkdir(parents=True)
        for i in range(count):
            np.savez(tmp_path / "dmlab" / split / f"{i}.npz", **dmlab_episode(rng, 16))
    return tmp_path / "dmlab"


def video_run(dmlab_dir: Path, tmp_path: Path) -> list[str]:
    return [
        *fixture_overrides(VIDEO),
        f"dataset.save_dir={dmlab_dir}",
        f"output_root={tmp_path / 'outputs'}",
        "wandb.mode=disabled",
        "experiment.validation.batch_size=2",
        "experiment.validation.data.num_workers=0",
        "algorithm.diffusion.sampling_timesteps=5",
    ]


@needs_fixtures
def test_seed_quick_start_samples_from_an_original_video_checkpoint(
    dmlab_dir: Path, tmp_path: Path, run_main, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        run_dir = run_main([*QUICK_START, *video_run(dmlab_dir, tmp_path)])
    lines = [r.getMessage() for r in caplog.records]
    assert any("DF v1.5 video checkpoints take no actions: external_cond_dim 3 -> 0" in line for line in lines)
    assert any("is a DF v1.5 checkpoint (step 1); its weights were converted" in line for line in lines)
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert 0 < metrics["validation/mse"] < 4
    assert list((run_dir / "videos").glob("validation_step1_*.mp4"))


@needs_fixtures
def test_training_continues_from_an_original_video_checkpoint(dmlab_dir: Path, tmp_path: Path, run_main) -> None:
    overrides = [
        *video_run(dmlab_dir, tmp_path),
        "+name=finetune",
        f"load={VIDEO}",
        "experiment.tasks=[training]",
        "experiment.training.max_steps=1",
        "experiment.training.batch_size=2",
        "experiment.training.data.num_workers=0",
    ]
    run_dir = run_main(overrides)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    original = torch.load(VIDEO, weights_only=False)["state_dict"]
    assert checkpoint["global_step"] == 1
    before = original["diffusion_model.model.module.init_conv.weight"].squeeze(2)
    after = checkpoint["state_dict"]["model.init_conv.weight"]
    assert 0 < (after - before).abs().max() < 1e-2, "started from the original's weights, then moved"


@needs_fixtures
def test_seed_maze_sampling_command_evaluates_an_original_planner(tmp_path: Path, run_main) -> None:
    overrides = [
        *MAZE_SAMPLING,
        *[o for o in fixture_overrides(PLANNER) if o.startswith("algorithm.diffusion.architecture.")],
        f"output_root={tmp_path / 'outputs'}",
        f"dataset.save_dir={tmp_path / 'data'}",
        "wandb.mode=disabled",
        "dataset.evaluation.protocol=fixed",
        "dataset.evaluation.start_cells=[[1,1]]",
        "algorithm.open_loop_horizon=300",
        "algorithm.diffusion.sampling_timesteps=3",
        "algorithm.logged_plots=0",
    ]
    run_dir = run_main(overrides)
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    assert 0 <= metrics["validation/episode_reward"] <= 600
    assert not (tmp_path / "data").exists(), "sampling needs no training data"


@needs_fixtures
def test_original_checkpoint_with_other_architecture_names_the_keys(dmlab_dir: Path, tmp_path: Path, run_main) -> None:
    with pytest.raises(
        ConfigError, match=r"load: .*linear_1.weight has shape \[64, 16\] in the checkpoint but \[96, 24\]"
    ):
        run_main([*QUICK_START, *video_run(dmlab_dir, tmp_path), "algorithm.diffusion.architecture.network_size=24"])


@needs_fixtures
def test_original_checkpoint_with_another_schedule_names_the_override(
    dmlab_dir: Path, tmp_path: Path, run_main
) -> None:
    with pytest.raises(
        ConfigError, match="noise schedule is not this configuration's: set algorithm.diffusion.beta_schedule=sigmoid$"
    ):
        run_main([*QUICK_START, *video_run(dmlab_dir, tmp_path), "algorithm.diffusion.beta_schedule=cosine"])


@needs_fixtures
def test_resume_from_an_original_checkpoint_points_to_load(dmlab_dir: Path, tmp_path: Path, run_main) -> None:
    with pytest.raises(ConfigError, match="resume: .* is a DF v1.5 checkpoint: start from it with load="):
        run_main(["+name=r", f"resume={VIDEO}", *video_run(dmlab_dir, tmp_path)])


def test_checkpoint_of_the_older_layout_is_refused(tiny: list[str], run_main, tmp_path: Path) -> None:
    run_dir = run_main([*tiny, "experiment.tasks=[training]"])
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    del checkpoint["df_layout"]  # what every checkpoint written before the DF v1.5 networks looks like
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    message = r"load: .*old.ckpt has an older layout of this project's networks \(version 1, this code reads 2\)"
    with pytest.raises(ConfigError, match=message):
        run_main([*tiny, f"load={old}", "experiment.tasks=[validation]"])
