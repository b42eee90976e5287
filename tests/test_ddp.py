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
    assert "trained to step 2 on 2 processes" in (run_dir / "main.log").read_text()
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2
