"""Several processes, one run: rank 0 decides the run id and prepares the data, the other ranks use them."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.exp_video import VideoPredictionExperiment
from tests.conftest import ROOT, compose_config, run_id
from utils.launch import Launch, current_launch, rank_overrides
from utils.typed_config import ConfigError

TORCHRUN_RANK_1 = {"TORCHELASTIC_RUN_ID": "abc", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}


def test_launchers_are_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    assert current_launch() == Launch(0, 1, None)
    with monkeypatch.context() as env:
        for name, value in TORCHRUN_RANK_1.items():
            env.setenv(name, value)
        assert current_launch() == Launch(1, 2, "torchrun-abc")
    slurm = {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_STEP_ID": "0", "SLURM_JOB_ID": "77"}
    with monkeypatch.context() as env:
        for name, value in slurm.items():
            env.setenv(name, value)
        assert current_launch() == Launch(0, 2, "slurm-77.0")
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process that Lightning's own launcher started
    assert not current_launch().is_primary


def test_every_rank_is_pinned_to_one_run_directory() -> None:
    assert rank_overrides(Launch(0, 1, None), []) == []
    assert rank_overrides(Launch(0, 2, "slurm-7.0"), []) == ["hydra.run.dir=${output_root}/${now:%Y-%m-%d}/slurm-7.0"]
    assert rank_overrides(Launch(1, 2, "slurm-7.0"), ["hydra.run.dir=/shared/run"]) == [
        "hydra.output_subdir=null",
        "hydra.job.name=main_rank1",
    ]
    with pytest.raises(ConfigError, match="torchrun without a rendezvous id: start it with --standalone"):
        rank_overrides(Launch(1, 2, "torchrun-none"), [])


def test_other_ranks_read_rank_zeros_run_and_never_prepare_data(
    tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in TORCHRUN_RANK_1.items():
        monkeypatch.setenv(name, value)
    prepared = []
    monkeypatch.setattr(VideoPredictionExperiment, "_prepare_data", lambda self: prepared.append(self))
    run_dir = tmp_path / "run"
    cfg = compose_config([*tiny, "experiment.rank_zero_timeout_s=1"], run_dir)
    with pytest.raises(ConfigError, match=r"experiment.rank_zero_timeout_s: rank 1 waited 1 s for rank 0 to write"):
        VideoPredictionExperiment(cfg, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps({"id": "rank0id1", "name": "test"}))
    experiment = VideoPredictionExperiment(cfg, run_dir)
    assert experiment.run_id == "rank0id1" and prepared == []
    assert json.loads((run_dir / "run.json").read_text()) == {"id": "rank0id1", "name": "test"}


@pytest.mark.slow  # fast sibling: test_other_ranks_read_rank_zeros_run_and_never_prepare_data
def test_torchrun_with_two_processes_is_one_run(tiny: list[str], tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    data = tmp_path / "fresh_data"  # generated during the run: by rank 0 alone
    args = [a for a in tiny if not a.startswith(("output_root=", "dataset.save_dir="))]
    args += [f"output_root={outputs}", f"dataset.save_dir={data}", "experiment.devices=2", "experiment.strategy=ddp"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "main"]
    result = subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = outputs.glob("*/torchrun-*")
    assert ranks_in_logs(run_dir) == {"main.log": [("0", run_id(run_dir))], "main_rank1.log": [("1", run_id(run_dir))]}
    assert "trained to step 2 on 2 processes" in (run_dir / "main.log").read_text()
    assert sorted(p.name for p in run_dir.glob(".hydra*")) == [".hydra"], "one config dump"
    assert len(list((data / "training").glob("*.npz"))) == 3


def ranks_in_logs(run_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Each log file of the run: the (rank, run id) pairs its start-up lines name."""
    return {log.name: re.findall(r"rank (\d) of 2: run (\w+) in", log.read_text()) for log in run_dir.glob("main*.log")}
