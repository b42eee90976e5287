"""Lightning DDP with two CPU processes (gloo) through the real command line."""

from pathlib import Path

from tests.conftest import ROOT, checkpoint_step, run_cli


def test_two_process_ddp_on_cpu(tiny: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp_run"
    args = [
        *tiny,
        "experiment.devices=2",
        "experiment.strategy=ddp",
        "experiment.training.max_steps=2",
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2
