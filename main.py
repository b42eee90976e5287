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

from experiments import experiment_class
from utils.typed_config import ConfigError

log = logging.getLogger("main")


def run(cfg: DictConfig, output_dir: Path) -> None:
    """Check the whole config, then run each task; raises `ConfigError` for user mistakes."""
    if "name" not in cfg or not cfg.name:
        raise ConfigError("+name", "missing; name the run on the command line, e.g. +name=my_experiment")
    tasks = list(cfg.experiment.tasks)
    cls = experiment_class(cfg.experiment.get("_name"))
    cls.check_tasks(tasks)
    with cls(cfg, output_dir) as experiment:
        log.info("run %s in %s: tasks %s", cfg.name, output_dir, tasks)
        for task in tasks:
            getattr(experiment, task)()


@hydra.main(version_base=None, config_path="configurations", config_name="config")
def main(cfg: DictConfig) -> None:
    OmegaConf.set_readonly(cfg, True)
    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
