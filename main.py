"""Entry point: `python -m main +name=<run name> [group=option ...] [key=value ...]`.

Hydra composes `configurations/config.yaml` with the `experiment`, `dataset`, `algorithm` and `cluster` groups;
the experiment named by `experiment._name` then runs `experiment.tasks` in order.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from utils.cluster import SLURM_DIR, SlurmClusterConfig, on_compute_node, submit, with_job_settings
from utils.config_groups import check_group_overrides
from utils.launch import current_launch, rank_overrides
from utils.typed_config import ConfigError, build

log = logging.getLogger("main")


def run(cfg: DictConfig, output_dir: Path, overrides: list[str] | None = None) -> None:
    """Check the whole config, then submit it to slurm (`cluster=…` on a login node) or run each task here.

    Raises `ConfigError` for user mistakes; `overrides` are the command line's, which a cluster job repeats.
    """
    if "name" not in cfg or not cfg.name:
        raise ConfigError("+name", "missing; name the run on the command line, e.g. +name=my_experiment")
    from experiments import experiment_class  # torch and Lightning: imported once the command line is checked

    tasks = list(cfg.experiment.tasks)
    cls = experiment_class(cfg.experiment.get("_name"))
    cls.check_tasks(tasks)
    if cfg.get("cluster") is not None and not on_compute_node():
        cls.check_config(cfg)
        job = submit(build(SlurmClusterConfig, cfg.cluster, "cluster"), str(cfg.name), overrides or [], output_dir)
        print(f"submitted slurm job {job}; log: {output_dir / SLURM_DIR / f'slurm_{job}.out'}")
        return
    if cfg.get("cluster") is not None:  # a sweep job submitted by hydra-submitit-launcher
        cfg = with_job_settings(cfg)
    with cls(cfg, output_dir) as experiment:
        log.info("run %s in %s: tasks %s", cfg.name, output_dir, tasks)
        for task in tasks:
            getattr(experiment, task)()


@hydra.main(version_base=None, config_path="configurations", config_name="config")
def main(cfg: DictConfig) -> None:
    OmegaConf.set_readonly(cfg, True)
    try:
        hydra_config = HydraConfig.get()
        run(cfg, Path(hydra_config.runtime.output_dir), list(hydra_config.overrides.task))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    try:
        check_group_overrides(sys.argv[1:])
        sys.argv += rank_overrides(current_launch(), sys.argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    main()
