"""Experiment registry: `experiment._name` → class."""

from utils.typed_config import ConfigError

from .base_experiment import BaseExperiment
from .exp_planning import PlanningExperiment
from .exp_video import VideoPredictionExperiment

EXPERIMENTS: dict[str, type[BaseExperiment]] = {
    "exp_planning": PlanningExperiment,
    "exp_video": VideoPredictionExperiment,
}


def experiment_class(name: str) -> type[BaseExperiment]:
    if name not in EXPERIMENTS:
        raise ConfigError("experiment", f"{name!r} is not registered; choose one of: {', '.join(sorted(EXPERIMENTS))}")
    return EXPERIMENTS[name]
