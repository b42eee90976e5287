"""`cluster=local_slurm` against a real one-node slurm on this machine: submission, requeue, DDP, quoting.

The session fixture starts munged, slurmctld and slurmd with `.ci/local_slurm.sh` in a temp dir and stops them by
PID afterwards; `.ci/run` installs the Debian packages. Without root or the packages the tests are skipped.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, checkpoint_step, run_cli, run_id
from tests.test_ranks import ranks_in_logs
from utils.cluster import SlurmClusterConfig, SlurmParams, job_overrides, minutes, render_script, submitit_parameters

SCRIPT = ROOT / ".ci" / "local_slurm.sh"


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """Environment (with SLURM_CONF) of a running local slurm cluster."""
    if os.geteuid() != 0:
        pytest.skip("the local slurm cluster needs root (SlurmUser=root)")
    if not all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        pytest.skip("slurm is not installed: run `.ci/local_slurm.sh install` as root (Debian)")
    # munged wants every folder above its socket world-executable (pytest's temp dirs are not) and a short path
    folder = Path(tempfile.mkdtemp(prefix="df-slurm-", dir="/tmp"))
    started = subprocess.run([str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        subprocess.run([str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=120)
        pytest.fail(f"local slurm did not start: {started.stderr}")
    yield {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    subprocess.run([str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


def job_state(job: str, env: dict[str, str]) -> str:
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, env=env)
    match = re.search(r"JobState=(\S+)", shown.stdout)
    return match.group(1) if match else "UNKNOWN"


def wait_for_job(job: str, env: dict[str, str], timeout_s: float = 240) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = job_state(job, env)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job} still {job_state(job, env)} after {timeout_s} s")


def submit(args: list[str], env: dict[str, str]) -> tuple[str, Path]:
    """Run `python -m main cluster=local_slurm ...` as on a login node; (job id, run directory)."""
    result = run_cli(["cluster=local_slurm", *args], cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    match = re.search(r"submitted slurm job (\d+); log: (\S+)/slurm/slurm_\1\.out", result.stdout)
    assert match, result.stdout
    return match.group(1), Path(match.group(2))


def log_of(run_dir: Path, job: str) -> str:
    return (run_dir / "slurm" / f"slurm_{job}.out").read_text() + (run_dir / "slurm" / f"slurm_{job}.err").read_text()


def test_login_node_submits_and_the_job_trains(slurm: dict[str, str], tiny: list[str]) -> None:
    started = time.monotonic()
    job, run_dir = submit(tiny, slurm)
    assert wait_for_job(job, slurm) == "COMPLETED", log_of(run_dir, job)
    print(f"sbatch → finished tiny job: {time.monotonic() - started:.1f} s")
    script = (run_dir / "slurm" / "job.sbatch").read_text()
    assert "cluster=" not in script.split("srun", 1)[1] and f"hydra.run.dir={run_dir}" in script
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2
    assert f"job {job} (restart 0)" in log_of(run_dir, job)


def test_preempted_job_requeues_and_resumes_its_run(slurm: dict[str, str], tiny: list[str]) -> None:
    steps = 200
    args = [*tiny, f"experiment.training.max_steps={steps}", "experiment.training.checkpointing.every_n_train_steps=10"]
    job, run_dir = submit(args, slurm)
    deadline = time.monotonic() + 180
    while not list((run_dir / "checkpoints").glob("*.ckpt")):
        assert time.monotonic() < deadline and job_state(job, slurm) in ("PENDING", "RUNNING"), log_of(run_dir, job)
        time.sleep(0.2)
    first_id = run_id(run_dir)
    subprocess.run(["scancel", "--signal=USR1", job], check=True, env=slurm)
    assert wait_for_job(job, slurm, timeout_s=300) == "COMPLETED", log_of(run_dir, job)
    saved = checkpoint_step(run_dir / "hpc_ckpt_1.ckpt")
    assert 0 < saved < steps
    log = log_of(run_dir, job)
    assert f"job {job} (restart 1)" in log and "Restoring states from the checkpoint path" in log
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == steps
    assert run_id(run_dir) == first_id


def test_two_tasks_through_the_cluster_are_one_run_and_resume_as_one(
    slurm: dict[str, str], tiny: list[str], tmp_path: Path
) -> None:
    data = tmp_path / "fresh_data"  # generated inside the job: by rank 0 alone, the other task waits for it
    two_tasks = [*(a for a in tiny if not a.startswith("dataset.save_dir=")), f"dataset.save_dir={data}"]
    two_tasks.append("cluster.params.cpu_processes=2")
    job, run_dir = submit(two_tasks, slurm)
    assert wait_for_job(job, slurm) == "COMPLETED", log_of(run_dir, job)
    assert "#SBATCH --ntasks-per-node=2" in (run_dir / "slurm" / "job.sbatch").read_text()
    assert "MEMBER: 2/2" in log_of(run_dir, job)
    first = run_id(run_dir)
    assert ranks_in_logs(run_dir) == {"main.log": [("0", first)], "main_rank1.log": [("1", first)]}
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2
    assert len(list((data / "training").glob("*.npz"))) == 3

    job, resumed_dir = submit([*two_tasks, f"resume={first}", "experiment.training.max_steps=4"], slurm)
    assert wait_for_job(job, slurm) == "COMPLETED", log_of(resumed_dir, job)
    assert ranks_in_logs(resumed_dir) == {"main.log": [("0", first)], "main_rank1.log": [("1", first)]}
    assert run_id(resumed_dir) == first
    assert checkpoint_step(resumed_dir / "checkpoints" / "last.ckpt") == 4


@pytest.mark.slow  # the default suite submits 2 tasks through cluster=local_slurm
def test_srun_without_the_cluster_config_is_one_run(slurm: dict[str, str], tiny: list[str]) -> None:
    """A user's own `srun --ntasks-per-node=2 python -m main …`: one run directory, named by the job step."""
    outputs = Path(next(a.split("=", 1)[1] for a in tiny if a.startswith("output_root=")))
    command = [
        "srun",
        "--nodes=1",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--mem=2G",
        sys.executable,
        "-m",
        "main",
        *tiny,
    ]
    command += ["experiment.devices=2", "experiment.strategy=ddp"]
    result = subprocess.run(command, cwd=ROOT, env=slurm, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = outputs.glob("*/slurm-*")
    assert ranks_in_logs(run_dir) == {"main.log": [("0", run_id(run_dir))], "main_rank1.log": [("1", run_id(run_dir))]}
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == 2


def test_hostile_name_and_overrides_never_reach_a_shell(slurm: dict[str, str], tiny: list[str], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"it\\'s a b\"; touch {marker}; $(touch {marker}) `touch {marker}`"  # Hydra-quoted below
    args = [*(o for o in tiny if not o.startswith("+name=")), f"+name='{hostile}'", "experiment.tasks=[training]"]
    job, run_dir = submit(args, slurm)
    assert wait_for_job(job, slurm) == "COMPLETED", log_of(run_dir, job)
    assert not marker.exists()
    assert (run_dir / "run.json").read_text().count("pwned") == 3  # the name arrived verbatim
    assert "#SBATCH --job-name=it_s_a_b___touch_" in (run_dir / "slurm" / "job.sbatch").read_text()


def test_job_overrides_follow_the_cluster(tmp_path: Path) -> None:
    offline = SlurmClusterConfig(
        launch_template="", params=SlurmParams(num_nodes=2, num_gpus=4), is_compute_node_offline=True
    )
    assert job_overrides(
        ["+name=x", "cluster=mit_supercloud", "cluster.params.num_gpus=4", "lr=1"], offline, tmp_path
    ) == [
        "+name=x",
        "lr=1",
        f"hydra.run.dir={tmp_path}",
        "experiment.num_nodes=2",
        "experiment.devices=4",
        "experiment.accelerator=gpu",
        "experiment.strategy=ddp",
        "wandb.mode=offline",
        "wandb.sync_from_login_node=true",
    ]


def test_unknown_template_placeholder_names_the_key(tmp_path: Path) -> None:
    from utils.typed_config import ConfigError

    with pytest.raises(ConfigError, match=r"^cluster.launch_template: bad placeholder 'gpus'; available: .*num_gpus"):
        render_script(SlurmClusterConfig(launch_template="#SBATCH -G {gpus}"), "x", tmp_path, [])


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "configurations" / "cluster").glob("*.yaml")))
def test_every_cluster_config_renders_a_script(name: str, tmp_path: Path) -> None:
    from tests.conftest import compose_config
    from utils.typed_config import build

    cfg = compose_config(["+name=x", f"cluster={name}"], tmp_path)
    cluster = build(SlurmClusterConfig, cfg.cluster, "cluster")
    script = render_script(cluster, "x", tmp_path, ["+name=x"])
    assert script.startswith("#!/bin/bash\n#SBATCH --job-name=x\n") and "-m main +name=x\n" in script
    assert "{" not in script.replace("${", "")


def test_bad_config_is_refused_before_submission(tiny: list[str], tmp_path: Path) -> None:
    result = run_cli(["cluster=local_slurm", *tiny, "algorithm.scheduling_matrix=spiral"], cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: algorithm.scheduling_matrix: got 'spiral'")
    assert not list((tmp_path / "outputs").rglob("job.sbatch"))


def test_sweep_submits_one_job_per_value_through_submitit(slurm: dict[str, str], tiny: list[str]) -> None:
    """`-m cluster=local_slurm … lr=a,b`: hydra-submitit-launcher submits both jobs and waits for their results."""
    result = run_cli(["-m", "cluster=local_slurm", *tiny, "experiment.training.lr=1e-4,3e-4"], ROOT, 400, slurm)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = next(Path(o.split("=", 1)[1]) for o in tiny if o.startswith("output_root="))
    sweep = next(outputs.glob("*/*"))
    script = next((sweep / "slurm").glob(".submission_file_*.sh")).read_text()  # submitit's array script
    for line in (
        "--array=0-1%2",
        "--requeue",
        "--signal=USR1@30",
        "--mem=2G",
        "--ntasks-per-node=1",
        "--cpus-per-task=1",
    ):
        assert f"#SBATCH {line}" in script, script
    learning_rates = []
    for job in ("0", "1"):
        assert torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
        learning_rates.append(re.search(r"\n    lr: (\S+)", (sweep / job / ".hydra" / "config.yaml").read_text())[1])
    assert learning_rates == ["0.0001", "0.0003"]


def test_offline_node_asks_the_login_node_to_sync(slurm: dict[str, str], tiny: list[str], tmp_path: Path) -> None:
    """`is_compute_node_offline`: wandb runs offline and each validation leaves a wandb-osh sync request."""
    home = tmp_path / "home"  # wandb-osh's command folder is ~/.wandb_osh_command_dir
    args = [*tiny, "cluster.is_compute_node_offline=true", "experiment.validation.val_every_n_step=2"]
    job, run_dir = submit(args, {**slurm, "HOME": str(home)})
    assert wait_for_job(job, slurm) == "COMPLETED", log_of(run_dir, job)
    requests = list((home / ".wandb_osh_command_dir").glob("*.command"))
    assert len(requests) == 1
    offline_run = Path(requests[0].read_text())
    assert offline_run.parent == run_dir / "wandb" and offline_run.name.startswith("offline-run-")
    assert list(offline_run.glob("*.wandb"))


def test_submitit_parameters_mirror_the_sbatch_script(tmp_path: Path) -> None:
    cluster = SlurmClusterConfig(
        launch_template="",
        activate="conda activate {env_name}",
        params=SlurmParams(
            env_name="df",
            partition="gpu",
            num_nodes=2,
            num_gpus=4,
            time="1-02:30:00",
            memory="64G",
            email="me@lab.org",
            extra_sbatch=("--constraint=a100", "#SBATCH --exclusive"),
        ),
    )
    assert submitit_parameters(cluster, "my run") == {
        "name": "my_run",
        "partition": "gpu",
        "nodes": 2,
        "gpus_per_node": 4,
        "tasks_per_node": 4,
        "cpus_per_task": 8,
        "timeout_min": 1590,
        "activate": "conda activate df",
        "additional_parameters": {
            "mem": "64G",
            "requeue": True,
            "signal": "USR1@90",
            "mail-user": "me@lab.org",
            "mail-type": "BEGIN,END,FAIL",
            "constraint": "a100",
            "exclusive": True,
        },
    }
    assert submitit_parameters(SlurmClusterConfig("", params=SlurmParams(num_gpus=0)), "x")["gpus_per_node"] is None
    assert [minutes(t) for t in ("00:30:00", "45", "2:00", "0:00:01")] == [30, 45, 120, 1]


def test_preempted_sweep_job_requeues_and_resumes(slurm: dict[str, str], tiny: list[str]) -> None:
    """A sweep job signalled like a preemption checkpoints, requeues itself and finishes from the saved step."""
    steps = 200
    outputs = next(Path(o.split("=", 1)[1]) for o in tiny if o.startswith("output_root="))
    args = ["-m", "cluster=local_slurm", *tiny, f"experiment.training.max_steps={steps}", "experiment.training.lr=1e-4"]
    login = subprocess.Popen(
        [sys.executable, "-m", "main", *args, "experiment.training.checkpointing.every_n_train_steps=10"],
        cwd=ROOT,
        env=slurm,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not list(outputs.glob("*/*/0/checkpoints/*.ckpt")):
            assert time.monotonic() < deadline and login.poll() is None, "no checkpoint from the sweep job"
            time.sleep(0.2)
        run_dir = next(outputs.glob("*/*/0"))
        first_id = run_id(run_dir)
        job = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=slurm).stdout.split()[0]
        subprocess.run(["scancel", "--signal=USR1", job], check=True, env=slurm)
        output, _ = login.communicate(timeout=300)
    finally:
        login.kill()
    assert login.returncode == 0, output
    assert 0 < checkpoint_step(run_dir / "hpc_ckpt_1.ckpt") < steps
    job_log = "".join(log.read_text() for log in (run_dir.parent / "slurm").rglob("*_log.err"))
    assert "Restoring states from the checkpoint path" in job_log
    assert checkpoint_step(run_dir / "checkpoints" / "last.ckpt") == steps
    assert run_id(run_dir) == first_id
