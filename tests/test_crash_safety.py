"""A training process killed with SIGKILL leaves a run that `resume=<id>` continues."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, checkpoint_step, run_cli, run_id


def test_killed_training_resumes_from_its_newest_readable_checkpoint(tiny: list[str], tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    run_dir = outputs / "killed"
    long_run = [*tiny, "experiment.training.max_steps=100000", f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "main", *long_run], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = run_dir / "checkpoints"
    deadline = time.monotonic() + 240
    while len(list(checkpoints.glob("step_*.ckpt"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # mid-step or mid-write: every step writes a checkpoint
    process.wait()
    saved = sorted(checkpoints.glob("step_*.ckpt"), key=lambda c: c.stat().st_mtime)
    assert len(saved) >= 3, "the run was killed after it had saved checkpoints"
    newest_step = max(checkpoint_step(c) for c in saved)
    # a newer file cut short, as a copy or a full disk leaves it: resume must pass over it
    (checkpoints / "step_999999.ckpt").write_bytes(saved[-1].read_bytes()[:1000])

    resumed_dir = outputs / "resumed"
    resumed = run_cli(
        [
            *tiny,
            f"resume={run_id(run_dir)}",
            f"experiment.training.max_steps={newest_step + 2}",
            f"hydra.run.dir={resumed_dir}",
        ],
        cwd=ROOT,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resume: skipped, the newer file cannot be read" in resumed.stderr + resumed.stdout
    assert run_id(resumed_dir) == run_id(run_dir)
    assert checkpoint_step(resumed_dir / "checkpoints" / "last.ckpt") == newest_step + 2
