"""Slurm submission from a login node: `python -m main cluster=<name> ...` writes an sbatch script into the run
directory, submits it, prints the job id and log path, and exits; the job runs the same command without the
cluster part, in the same run directory.

Inside the job Lightning's SLURM environment takes over: ranks and nodes come from slurm, and on `SIGUSR1`
(sent `--signal` seconds before the time limit, or by `scancel --signal=USR1`) Lightning saves
`hpc_ckpt_<n>.ckpt` in the run directory and requeues the job, which then resumes from it under the same run id.

Sweeps (`python -m main -m cluster=<name> … key=a,b`) go through hydra-submitit-launcher instead: every cluster
config selects `hydra/launcher=cluster_slurm`, whose fields come from `submitit_parameters` (same resources,
environment line and requeue signal), and each job applies `job_settings` to its config on the node.

Every user-supplied value reaches the job's shell through `shlex.quote`, and the job name on the `#SBATCH` line
is reduced to safe characters, so names or overrides holding spaces, quotes, `$(…)` or `;` never run as shell.
"""

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from utils.typed_config import ConfigError, build, require

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = "slurm"


@dataclass(frozen=True)
class SlurmParams:
    """`cluster.params.*`: resources of one job; `num_gpus` and `cpu_processes` are per node."""

    env_name: str | None = None
    partition: str | None = None
    num_nodes: int = 1
    num_gpus: int = 1
    cpu_processes: int = 1
    num_cpus: int = 8
    memory: str = "32G"
    time: str = "24:00:00"
    email: str | None = None
    requeue_signal_seconds: int = 90
    extra_sbatch: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require(self.num_nodes >= 1, "num_nodes", f"must be >= 1, got {self.num_nodes}")
        require(self.num_gpus >= 0, "num_gpus", f"must be >= 0, got {self.num_gpus}")
        require(self.cpu_processes >= 1, "cpu_processes", f"must be >= 1, got {self.cpu_processes}")
        require(self.num_cpus >= 1, "num_cpus", f"must be >= 1, got {self.num_cpus}")
        require(
            re.fullmatch(r"(\d+-)?\d+(:\d{2}){0,2}", self.time) is not None,
            "time",
            f"use slurm's [D-]HH:MM:SS, got {self.time!r}",
        )

    @property
    def processes_per_node(self) -> int:
        """One process per GPU, or `cpu_processes` CPU processes (gloo) on machines without GPUs."""
        return self.num_gpus if self.num_gpus > 0 else self.cpu_processes


@dataclass(frozen=True)
class SlurmClusterConfig:
    """`cluster=<name>`: where and how jobs run; `launch_template` is formatted with `placeholders()`."""

    launch_template: str
    params: SlurmParams = field(default_factory=SlurmParams)
    is_compute_node_offline: bool = False
    activate: str = ""


def on_compute_node() -> bool:
    """True inside a slurm job, where the cluster part of the command is ignored."""
    return "SLURM_JOB_ID" in os.environ


def job_settings(cluster: SlurmClusterConfig) -> list[str]:
    """Overrides every job of this cluster runs with: devices and nodes from its resources, offline wandb."""
    params = cluster.params
    derived = [
        f"experiment.num_nodes={params.num_nodes}",
        f"experiment.devices={params.processes_per_node}",
        f"experiment.accelerator={'gpu' if params.num_gpus else 'cpu'}",
    ]
    if params.num_nodes * params.processes_per_node > 1:
        derived.append("experiment.strategy=ddp")
    if cluster.is_compute_node_offline:
        derived += ["wandb.mode=offline", "wandb.sync_from_login_node=true"]
    return derived


def job_overrides(overrides: list[str], cluster: SlurmClusterConfig, run_dir: Path) -> list[str]:
    """The user's overrides minus `cluster=…`, pinned to `run_dir`, plus the cluster's `job_settings`."""
    kept = [o for o in overrides if not re.match(r"^[+~]*cluster([.=]|$)", o)]
    return [*kept, f"hydra.run.dir={run_dir}", *job_settings(cluster)]


def with_job_settings(cfg: DictConfig) -> DictConfig:
    """`cfg` of a sweep job that still names its cluster, with that cluster's `job_settings` applied."""
    cluster = build(SlurmClusterConfig, cfg.cluster, "cluster")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(job_settings(cluster)))


def safe_job_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100] or "job"


def placeholders(cluster: SlurmClusterConfig, name: str, run_dir: Path, python_args: list[str]) -> dict[str, str]:
    """Values for `launch_template`, including the original's `{name} {log_dir} {email} {num_gpus} {num_cpus}
    {memory} {time} {env_name} {project_root} {python_args}`."""
    params = cluster.params
    optional = []
    if params.partition:
        optional.append(f"#SBATCH --partition={params.partition}")
    if params.num_gpus:
        optional.append(f"#SBATCH --gres=gpu:{params.num_gpus}")
    if params.email:
        optional += [f"#SBATCH --mail-user={params.email}", "#SBATCH --mail-type=BEGIN,END,FAIL"]
    optional += [line if line.startswith("#SBATCH") else f"#SBATCH {line}" for line in params.extra_sbatch]
    values = {
        "name": safe_job_name(name),
        "log_dir": str(run_dir / SLURM_DIR),
        "email": params.email or "",
        "num_nodes": params.num_nodes,
        "num_gpus": params.num_gpus,
        "processes_per_node": params.processes_per_node,
        "num_cpus": params.num_cpus,
        "memory": params.memory,
        "time": params.time,
        "requeue_signal_seconds": params.requeue_signal_seconds,
        "env_name": params.env_name or "",
        "project_root": shlex.quote(str(PROJECT_ROOT)),
        "python": shlex.quote(sys.executable),
        "python_args": " ".join(shlex.quote(arg) for arg in python_args),
        "optional_sbatch": "\n".join(optional),
    }
    values["activate"] = cluster.activate.format(**values)
    return {k: str(v) for k, v in values.items()}


def minutes(time: str) -> int:
    """Slurm's `[D-]HH:MM:SS` (or `[D-]HH:MM`, `MM`) as whole minutes, rounded up."""
    days, _, clock = time.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if len(parts) == 1:
        hours, mins, secs = 0, parts[0], 0
    else:
        hours, mins, secs = (parts + [0])[:3]
    return int(days or 0) * 1440 + hours * 60 + mins + (1 if secs else 0)


def submitit_parameters(cluster: SlurmClusterConfig, name: str) -> dict[str, Any]:
    """`hydra.launcher.*` of hydra-submitit-launcher for `cluster`: what the sbatch script of a single run asks
    for, including `--requeue` and SIGUSR1 (Lightning's checkpoint-and-requeue signal, not submitit's USR2)."""
    params = cluster.params
    extra: dict[str, Any] = {
        "mem": params.memory,
        "requeue": True,
        "signal": f"USR1@{params.requeue_signal_seconds}",
    }
    if params.email:
        extra.update({"mail-user": params.email, "mail-type": "BEGIN,END,FAIL"})
    for line in params.extra_sbatch:
        flag, _, value = line.removeprefix("#SBATCH").strip().lstrip("-").partition("=")
        extra[flag] = value or True
    activate = placeholders(cluster, name, Path.cwd(), [])["activate"]  # already formatted there
    return {
        "name": safe_job_name(name),
        "partition": params.partition,
        "nodes": params.num_nodes,
        "gpus_per_node": params.num_gpus or None,
        "tasks_per_node": params.processes_per_node,
        "cpus_per_task": params.num_cpus,
        "timeout_min": minutes(params.time),
        "activate": activate,
        "additional_parameters": extra,
    }


def _submitit_field(key: str, _root_: DictConfig) -> Any:
    cluster = build(SlurmClusterConfig, _root_.cluster, "cluster")
    return submitit_parameters(cluster, str(_root_.get("name") or "sweep"))[key]


OmegaConf.register_new_resolver("cluster_submitit", _submitit_field, replace=True)


def render_script(cluster: SlurmClusterConfig, name: str, run_dir: Path, python_args: list[str]) -> str:
    values = placeholders(cluster, name, run_dir, python_args)
    try:
        return cluster.launch_template.format(**values)
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            "cluster.launch_template", f"bad placeholder {error}; available: {', '.join(sorted(values))}"
        ) from None


def submit(cluster: SlurmClusterConfig, name: str, overrides: list[str], run_dir: Path) -> str:
    """Write `<run_dir>/slurm/job.sbatch`, submit it with sbatch, and return the job id."""
    script = render_script(cluster, name, run_dir, job_overrides(overrides, cluster, run_dir))
    folder = run_dir / SLURM_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.sbatch"
    path.write_text(script)
    try:
        result = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ConfigError("cluster", "sbatch not found: run cluster=… on a slurm login node") from None
    if result.returncode != 0:
        raise ConfigError("cluster", f"sbatch refused {path}: {result.stderr.strip()}")
    return result.stdout.strip().split(";")[0]
