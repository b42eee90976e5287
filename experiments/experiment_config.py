"""`experiment.*` as typed config: every key of `configurations/experiment/base_pytorch.yaml`, type- and
range-checked at start-up so a bad value ends in one line naming the key, before a run directory, wandb run or
data preparation exists."""

from dataclasses import dataclass

from utils.typed_config import require

PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64", "32", "16", "bf16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def _check_precision(precision: str | int) -> None:
    require(
        str(precision) in PRECISIONS,
        "precision",
        f"got {precision!r}; choose one of: {', '.join(PRECISIONS)} (Lightning's names)",
    )


def _check_positive_or_none(value: int | None, key: str) -> None:
    require(value is None or value >= 1, key, f"must be >= 1 or null, got {value}")


@dataclass(frozen=True)
class EMAConfig:
    enable: bool = False
    decay: float = 0.999

    def __post_init__(self) -> None:
        require(0 < self.decay < 1, "decay", f"must be in (0, 1), got {self.decay}")


@dataclass(frozen=True)
class DataLoadingConfig:
    num_workers: int = 0
    shuffle: bool = False

    def __post_init__(self) -> None:
        require(self.num_workers >= 0, "num_workers", f"must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class OptimConfig:
    accumulate_grad_batches: int = 1
    gradient_clip_val: float = 0.0

    def __post_init__(self) -> None:
        require(
            self.accumulate_grad_batches >= 1,
            "accumulate_grad_batches",
            f"must be >= 1, got {self.accumulate_grad_batches}",
        )
        clip = self.gradient_clip_val
        require(clip >= 0, "gradient_clip_val", f"must be >= 0 (0 = off), got {clip}")


@dataclass(frozen=True)
class CheckpointingConfig:
    every_n_train_steps: int | None = None
    every_n_epochs: int | None = None
    train_time_interval: str | None = None
    enable_version_counter: bool = False

    def __post_init__(self) -> None:
        _check_positive_or_none(self.every_n_train_steps, "every_n_train_steps")
        _check_positive_or_none(self.every_n_epochs, "every_n_epochs")


@dataclass(frozen=True)
class StageConfig:
    """What every stage has: numeric precision, compilation, batch size and its data loader."""

    precision: str | int = "32-true"
    compile: bool = False
    batch_size: int = 8
    data: DataLoadingConfig = DataLoadingConfig()

    def __post_init__(self) -> None:
        _check_precision(self.precision)
        require(self.batch_size >= 1, "batch_size", f"must be >= 1 (clips per device), got {self.batch_size}")


@dataclass(frozen=True)
class TrainingConfig(StageConfig):
    lr: float = 8e-5
    max_epochs: int = -1
    max_steps: int = 200000
    max_time: str | None = None
    optim: OptimConfig = OptimConfig()
    checkpointing: CheckpointingConfig = CheckpointingConfig()

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        for key in ("max_steps", "max_epochs"):
            value = getattr(self, key)
            require(value >= 1 or value == -1, key, f"must be >= 1 (-1 = no limit), got {value}")


@dataclass(frozen=True)
class EvaluationConfig(StageConfig):
    limit_batch: int | float | None = 1
    inference_mode: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        limit = self.limit_batch
        require(
            limit is None or (isinstance(limit, int) and limit >= 1) or (isinstance(limit, float) and 0 < limit <= 1),
            "limit_batch",
            f"must be a batch count >= 1, a fraction in (0, 1] or null (all), got {limit}",
        )


@dataclass(frozen=True)
class ValidationConfig(EvaluationConfig):
    val_every_n_step: int | None = 10000
    val_every_n_epoch: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive_or_none(self.val_every_n_step, "val_every_n_step")
        _check_positive_or_none(self.val_every_n_epoch, "val_every_n_epoch")


@dataclass(frozen=True)
class ExperimentConfig:
    tasks: tuple[str, ...] = ("training",)
    accelerator: str = "auto"
    devices: int | str | tuple[int, ...] = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    rank_zero_timeout_s: float = 3600.0
    ema: EMAConfig = EMAConfig()
    training: TrainingConfig = TrainingConfig()
    validation: ValidationConfig = ValidationConfig()
    test: EvaluationConfig = EvaluationConfig()

    def __post_init__(self) -> None:
        require(
            self.accelerator in ACCELERATORS,
            "accelerator",
            f"got {self.accelerator!r}; choose one of: {', '.join(ACCELERATORS)}",
        )
        require(
            self.devices == "auto" or not isinstance(self.devices, str),
            "devices",
            f"got {self.devices!r}; give auto, a device count or a list of device indices",
        )
        require(
            isinstance(self.devices, str | tuple) or self.devices >= 1 or self.devices == -1,
            "devices",
            f"must be >= 1 (-1 = all), got {self.devices}",
        )
        require(self.num_nodes >= 1, "num_nodes", f"must be >= 1, got {self.num_nodes}")
        require(self.rank_zero_timeout_s > 0, "rank_zero_timeout_s", f"must be > 0, got {self.rank_zero_timeout_s}")


@dataclass(frozen=True)
class StabilityConfig:
    """`experiment.stability`: the long-rollout comparison of the `stability` task (video)."""

    multiple: int = 8
    clips: int = 4
    reference_clips: int = 16
    compare: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require(self.multiple >= 1, "multiple", f"must be >= 1 (times the training length), got {self.multiple}")
        require(self.clips >= 1, "clips", f"must be >= 1, got {self.clips}")
        require(self.reference_clips >= 1, "reference_clips", f"must be >= 1, got {self.reference_clips}")


@dataclass(frozen=True)
class VideoExperimentConfig(ExperimentConfig):
    stability: StabilityConfig = StabilityConfig()
