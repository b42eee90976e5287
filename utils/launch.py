"""Which process of a multi-process launch this is, and how its processes agree on one run.

Slurm (`srun`, several tasks) and torchrun start every process at once, each running `python -m main` with the
same command line; Lightning's own launcher starts the other local processes later and tells them the run
directory. Rank 0 decides everything that must exist once — the run id, `run.json`, the config dump, the wandb
run, the data on disk — and the other ranks use what it wrote:

- all ranks share one run directory: the one the command pins (`hydra.run.dir=…`, as `cluster=…` jobs do),
  else `<output_root>/<date>/<launch key>`, named after the slurm job step or torchrun's rendezvous id;
- ranks other than 0 write neither the config dump nor `main.log` (their log is `main_rank<k>.log`), and wait
  for rank 0's `run.json`, written once the data is ready, before they read the run id and the data.
"""

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from utils.typed_config import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    rank: int
    world_size: int
    key: str | None  # names the launch all its ranks share; None for one process or Lightning's own launcher

    @property
    def is_primary(self) -> bool:
        return self.rank == 0


def current_launch() -> Launch:
    """This process's place in the launch, from the launcher's environment."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env and int(env.get("WORLD_SIZE", "1")) > 1:
        return Launch(int(env["RANK"]), int(env["WORLD_SIZE"]), f"torchrun-{env['TORCHELASTIC_RUN_ID']}")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_ID" in env and "SLURM_PROCID" in env:
        key = f"slurm-{env['SLURM_JOB_ID']}.{env['SLURM_STEP_ID']}"
        return Launch(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), key)
    if int(env.get("LOCAL_RANK", "0")) > 0 or int(env.get("NODE_RANK", "0")) > 0:  # Lightning's launcher
        return Launch(max(int(env.get("LOCAL_RANK", "0")), 1), int(env.get("WORLD_SIZE", "2")), None)
    return Launch(0, 1, None)


def rank_overrides(launch: Launch, arguments: list[str]) -> list[str]:
    """Hydra overrides that put every rank of `launch` into one run directory and keep rank 0's files its own."""
    if launch.key is None:
        return []
    added = []
    if not any(a.lstrip("+").startswith("hydra.run.dir=") for a in arguments):
        if launch.key == "torchrun-none":
            raise ConfigError(
                "hydra.run.dir",
                "torchrun without a rendezvous id: start it with --standalone or --rdzv-id=<unique id>, or give "
                "hydra.run.dir=<folder>, so that all ranks share one run directory",
            )
        added.append(f"hydra.run.dir=${{output_root}}/${{now:%Y-%m-%d}}/{launch.key}")
    if not launch.is_primary:
        added += ["hydra.output_subdir=null", f"hydra.job.name=main_rank{launch.rank}"]
    return added


def wait_for_file(path: Path, timeout_s: float, rank: int) -> None:
    """Block until rank 0 has written `path`; a `ConfigError` naming the timeout key when it never comes."""
    started = time.monotonic()
    next_report = started + 60
    while not path.exists():
        now = time.monotonic()
        if now - started > timeout_s:
            raise ConfigError(
                "experiment.rank_zero_timeout_s",
                f"rank {rank} waited {timeout_s:.0f} s for rank 0 to write {path} (its data preparation may "
                "still be running, or it failed: see its log); raise the timeout for long downloads",
            )
        if now >= next_report:
            log.info("rank %d: waiting for rank 0 to write %s (%.0f s)", rank, path, now - started)
            next_report = now + 60
        time.sleep(0.5)
