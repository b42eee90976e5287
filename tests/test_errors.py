"""Every user mistake ends in one line naming the key and the fix, before any training, with no traceback."""

import logging
from pathlib import Path

import pytest

from main import run
from tests.conftest import ROOT, compose_config, run_cli
from utils.typed_config import ConfigError


def config_error(overrides: list[str], tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        run(compose_config(overrides, tmp_path / "run"), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists(), "nothing may start before the config is checked"
    return str(info.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("experiment.tasks=[training,dance]", r"experiment.tasks: unknown task 'dance'; valid tasks: stability, test,"),
        ("experiment.training.lr=-1", r"^experiment.training.lr: must be > 0, got -1.0"),
        ("algorithm.scheduling_matrix=spiral", r"algorithm.scheduling_matrix: got 'spiral'; choose one of: pyramid"),
        ("algorithm.diffusion.architecture.attn_resolutions=[32]", r"attn_resolutions: \[32\] do not fit this U-Net"),
        ("dataset.context_length=4", r"algorithm.context_frames: must be in \[0, n_frames=4\)"),
        ("algorithm.causal=maybe", r"algorithm.causal: expected true or false, got 'maybe'"),
        ("algorithm.diffusion.beta_schedule=quadratic", r"beta_schedule: got 'quadratic'; choose one of: linear"),
        ("algorithm.chunk_size=9", r"algorithm.chunk_size: must be -1 \(whole window\) or in \[1, 2\]"),
        ("wandb.mode=cloud", r"wandb.mode: got 'cloud'; choose one of: offline, online, disabled"),
        ("resume=abc12345", r"resume: no run 'abc12345' with a checkpoint under"),
        ("load=missing/model.ckpt", r"load: no checkpoint file at missing/model.ckpt"),
        ("experiment.training.batch_size=zero", r"experiment.training.batch_size: expected an integer, got 'zero'"),
        ("experiment.training.batch_size=0", r"experiment.training.batch_size: must be >= 1 \(clips per device\)"),
        ("experiment.validation.limit_batch=1.5", r"experiment.validation.limit_batch: must be a batch count >= 1"),
        ("experiment.training.precision=bf17", r"experiment.training.precision: got 'bf17'; choose one of: 64-true"),
        ("experiment.devices=many", r"experiment.devices: got 'many'; give auto, a device count or a list"),
        ("experiment.accelerator=tpu", r"experiment.accelerator: got 'tpu'; choose one of: auto, cpu"),
        ("experiment.training.data.num_workers=-2", r"experiment.training.data.num_workers: must be >= 0, got -2"),
        ("experiment.training.checkpointing.every_n_train_steps=0", r"every_n_train_steps: must be >= 1 or null"),
        ("seed=abc", r"^seed: expected an integer or null, got 'abc'"),
        ("experiment.ema.decay=1.5", r"experiment.ema.decay: must be in \(0, 1\), got 1.5"),
        ("experiment.training.max_steps=0", r"experiment.training.max_steps: must be >= 1 \(-1 = no limit\)"),
        ("+experiment.training.bacth_size=4", r"training.bacth_size: unknown key; valid keys are: batch_size"),
    ],
)
def test_bad_values_name_the_key(override: str, expected: str, tiny: list[str], tmp_path: Path) -> None:
    import re

    assert re.search(expected, config_error([*tiny, override], tmp_path))


def test_corrupt_checkpoint(tiny: list[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    assert "is not a readable checkpoint" in config_error([*tiny, f"load={broken}"], tmp_path)


def test_missing_name_on_the_command_line(tmp_path: Path) -> None:
    result = run_cli(["wandb.mode=disabled", f"output_root={tmp_path}"], cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: +name: missing; name the run on the command line, e.g. +name=my_experiment"


def test_unknown_group_option_lists_choices(tmp_path: Path) -> None:
    result = run_cli(["+name=x", "algorithm=df_nope", f"output_root={tmp_path}"], cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: algorithm: no option 'df_nope'; choose one of: df_planning, df_video"
    recipe = run_cli(["+name=x", "+recipe=crafter_dmeo", f"output_root={tmp_path}"], cwd=ROOT)
    prefix = "error: recipe: no option 'crafter_dmeo'; choose one of: "
    assert recipe.stderr.strip().startswith(prefix)
    assert "crafter_demo" in recipe.stderr.strip().removeprefix(prefix).split(", ")


def test_bad_value_on_the_command_line_has_no_traceback(tmp_path: Path) -> None:
    result = run_cli(["+name=x", "algorithm.scheduling_matrix=spiral", f"output_root={tmp_path}"], cwd=ROOT)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: algorithm.scheduling_matrix: got 'spiral'")


def test_checkpoint_of_another_architecture(tiny: list[str], run_main, tmp_path: Path) -> None:
    trained = run_main(tiny)
    bigger = [
        *tiny,
        f"load={trained / 'checkpoints' / 'last.ckpt'}",
        "algorithm.diffusion.architecture.network_size=16",
    ]
    assert "does not fit this algorithm's configuration" in config_error(bigger, tmp_path)


def test_bf16_on_a_cpu_that_emulates_it_is_warned_about_by_key(
    tiny: list[str], run_main, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("experiments.base_experiment.emulates_bf16", lambda accelerator: True)
    with caplog.at_level(logging.WARNING):
        run_main([*tiny, "experiment.tasks=[validation]", "experiment.validation.precision=bf16-mixed"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        w.startswith("experiment.validation.precision=bf16-mixed: this CPU has no native bf16") for w in warnings
    )
