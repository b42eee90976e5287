"""Experiments turn the composed config into objects and run its tasks: every public method is a task."""

import inspect
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import wandb
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from algorithms.diffusion_forcing.checkpoint_layouts import checkpoint_layout
from utils.atomic_checkpoint_io import AtomicCheckpointIO
from utils.bf16_support import emulates_bf16
from utils.checkpoints import CHECKPOINT_DIR, RUN_FILE, load_checkpoint, read_run_id, resolve_checkpoint, write_run_file
from utils.ema import WarmupEMA
from utils.launch import current_launch, wait_for_file
from utils.typed_config import ConfigError, build
from utils.wandb_logging import WANDB_MODES, make_wandb_logger

from .experiment_config import ExperimentConfig

log = logging.getLogger(__name__)

# A registry entry: the typed config dataclass and the class built from it.
Component = tuple[type, Callable[..., Any]]


class BaseExperiment:
    """Holds the config and output directory; subclasses add tasks as public methods."""

    def __init__(self, cfg: DictConfig, output_dir: Path) -> None:
        self.cfg = cfg
        self.output_dir = output_dir

    def __enter__(self) -> "BaseExperiment":
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release what the tasks opened (the logger's run); subclasses extend."""

    @classmethod
    def task_names(cls) -> list[str]:
        """Every public method of the experiment, the names `experiment.tasks` may list."""
        return sorted(
            name
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name != "task_names"
        )

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        """Check the config without building anything heavy (before submitting a cluster job); here: nothing."""

    @classmethod
    def check_tasks(cls, tasks: list[str]) -> None:
        valid = cls.task_names()
        for task in tasks:
            if task not in valid:
                raise ConfigError("experiment.tasks", f"unknown task {task!r}; valid tasks: {', '.join(valid)}")


class BaseLightningExperiment(BaseExperiment):
    """Builds one algorithm and its datasets from registries, then trains / validates / tests with Lightning.

    Everything a user can get wrong (keys, values, `load=`, `resume=`) is checked in `__init__`, before any task.
    """

    compatible_algorithms: dict[str, Component] = {}
    compatible_datasets: dict[str, Component] = {}
    config_class: type[ExperimentConfig] = ExperimentConfig

    def __init__(self, cfg: DictConfig, output_dir: Path) -> None:
        super().__init__(cfg, output_dir)
        self.config = build(self.config_class, cfg.experiment, "experiment")
        self.name = str(cfg.name)
        self.trusted = bool(cfg.trust_checkpoint)
        outputs_root = Path(cfg.output_root)
        wandb_mode = cfg.wandb.mode
        if wandb_mode not in WANDB_MODES:
            raise ConfigError("wandb.mode", f"got {wandb_mode!r}; choose one of: {', '.join(WANDB_MODES)}")
        lookup = dict(
            outputs_root=outputs_root,
            online=wandb_mode == "online",
            entity=cfg.wandb.entity,
            project=cfg.wandb.project,
            download_dir=output_dir / "downloaded",
            trusted=self.trusted,
        )
        self.resume_path = resolve_checkpoint("resume", str(cfg.resume), **lookup) if cfg.resume else None
        self.load_path = resolve_checkpoint("load", str(cfg.load), **lookup) if cfg.load else None
        if self.resume_path is not None and _read_checkpoint("resume", self.resume_path, self.trusted)[1] == "original":
            raise ConfigError("resume", f"{self.resume_path} is a DF v1.5 checkpoint: start from it with load=")
        self.launch = current_launch()
        if not self.launch.is_primary:  # rank 0 decides the run id and prepares the data, then writes run.json
            wait_for_file(output_dir / RUN_FILE, self.config.rank_zero_timeout_s, self.launch.rank)
        restarted = read_run_id(output_dir)  # a requeued slurm job resumes in its own run directory
        self.run_id = str(cfg.resume) if self.resume_path else restarted or _new_run_id()
        seed = cfg.get("seed")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ConfigError("seed", f"expected an integer or null, got {seed!r}")
            pl.seed_everything(seed + self.launch.rank, workers=True, verbose=False)
        self.ema = WarmupEMA(self.config.ema.decay) if self.config.ema.enable else None
        self.dataset_config = self.build_dataset_config(cfg)  # first: algorithm keys interpolate dataset keys
        self.algorithm = self.build_algorithm(cfg, self.load_path)
        resuming = bool(self.resume_path or restarted)
        self.logger = make_wandb_logger(  # Lightning opens the wandb run on rank 0 only
            wandb_mode, cfg.wandb.entity, cfg.wandb.project, self.name, self.run_id, output_dir, resuming
        )
        if self.launch.is_primary:
            self._prepare_data()
            write_run_file(output_dir, self.run_id, self.name)
            self.logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log.info("rank %d of %d: run %s in %s", self.launch.rank, self.launch.world_size, self.run_id, output_dir)

    def __exit__(self, *exc_info: object) -> None:
        if wandb.run is not None:
            wandb.run.finish()

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        build(cls.config_class, cfg.experiment, "experiment")
        for group, registry in (("dataset", cls.compatible_datasets), ("algorithm", cls.compatible_algorithms)):
            build(cls._lookup(cfg, group, registry)[0], cfg[group], group)

    def _prepare_data(self) -> None:
        """Generate, download or check what the tasks read, once, on rank 0, before the other ranks start."""
        splits = {"training": ["training", "validation"], "validation": ["validation"], "test": ["test"]}
        for split in sorted({split for task in self.config.tasks for split in splits.get(task, [])}):
            self.build_dataset(self.cfg, split, self.dataset_config)

    @classmethod
    def build_algorithm(cls, cfg: DictConfig, load_path: Path | None = None) -> Any:
        """The algorithm of `cfg.algorithm`, with the weights of the checkpoint at `load_path` when given.

        A DF v1.5 checkpoint is recognised by its keys: the config is adapted where it must be (one logged line
        per change) and the weights converted; one of this project's is loaded as it is.
        """
        config_cls, algorithm_cls = cls._lookup(cfg, "algorithm", cls.compatible_algorithms)
        config = build(config_cls, cfg.algorithm, "algorithm")
        if load_path is None:
            return algorithm_cls(config)
        checkpoint, layout = _read_checkpoint("load", load_path, bool(cfg.get("trust_checkpoint", False)))
        if layout == "original":
            config, changes = algorithm_cls.adapt_to_original(config)
            for line in changes:
                log.info("load: %s", line)
        algorithm = algorithm_cls(config)
        if layout == "original":
            step = int(checkpoint.get("global_step", 0))
            algorithm.load_original(checkpoint["state_dict"], step)
            log.info("load: %s is a DF v1.5 checkpoint (step %d); its weights were converted", load_path, step)
            return algorithm
        try:
            algorithm.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ConfigError("load", f"{load_path} does not fit this algorithm's configuration ({first})") from None
        return algorithm

    @classmethod
    def _lookup(cls, cfg: DictConfig, group: str, registry: dict[str, Component]) -> Component:
        name = cfg[group].get("_name")
        if name not in registry:
            valid = ", ".join(sorted(registry))
            raise ConfigError(group, f"{name!r} is not supported by {cls.__name__}; use one of: {valid}")
        return registry[name]

    @classmethod
    def build_dataset_config(cls, cfg: DictConfig) -> Any:
        """The typed config of `cfg.dataset`."""
        config_cls, _ = cls._lookup(cfg, "dataset", cls.compatible_datasets)
        return build(config_cls, cfg.dataset, "dataset")

    @classmethod
    def build_dataset(cls, cfg: DictConfig, split: str, config: Any = None) -> Dataset:
        """The `split` of `cfg.dataset` (from its already built typed `config` when given)."""
        _, dataset_cls = cls._lookup(cfg, "dataset", cls.compatible_datasets)
        return dataset_cls(config or cls.build_dataset_config(cfg), split)

    def _loader(self, split: str, stage: DictConfig) -> DataLoader:
        workers = stage.data.num_workers
        return DataLoader(
            self.build_dataset(self.cfg, split, self.dataset_config),
            batch_size=stage.batch_size,
            shuffle=stage.data.shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def _trainer(self, stage: DictConfig, name: str, **kwargs: Any) -> pl.Trainer:
        exp = self.cfg.experiment
        trainer = pl.Trainer(
            accelerator=exp.accelerator,
            devices=exp.devices,
            num_nodes=exp.num_nodes,
            strategy=exp.strategy,
            precision=stage.precision,
            logger=self.logger,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=str(self.output_dir),
            detect_anomaly=bool(self.cfg.debug),
            num_sanity_val_steps=0,
            # the training stage validates with the validation stage's setting
            inference_mode=bool(stage.get("inference_mode", exp.validation.get("inference_mode", True))),
            **kwargs,
        )
        if str(stage.precision).startswith("bf16") and emulates_bf16(trainer.accelerator):
            log.warning(
                "experiment.%s.precision=%s: this CPU has no native bf16 (%s), so bf16 runs far slower than fp32 "
                "here (a 512² matmul about 25x); 32-true is the fast choice on it",
                name,
                stage.precision,
                torch.backends.cpu.get_cpu_capability(),
            )
        return trainer

    def _compile(self, stage: DictConfig) -> None:
        if stage.compile:
            self.algorithm.model.compile()

    def training(self) -> None:
        """Fit the algorithm; periodic validation and checkpoints into `<run dir>/checkpoints/`."""
        train = self.cfg.experiment.training
        val = self.cfg.experiment.validation
        ckpt = train.checkpointing
        checkpoint_dir = self.output_dir / CHECKPOINT_DIR
        callbacks = [
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                filename="step_{step}",  # no '=' in the name: Hydra's override grammar would stop `load=<file>`
                auto_insert_metric_name=False,
                every_n_train_steps=ckpt.every_n_train_steps,
                every_n_epochs=ckpt.every_n_epochs,
                train_time_interval=ckpt.train_time_interval,
                enable_version_counter=ckpt.enable_version_counter,
                save_top_k=-1,
            ),
            LearningRateMonitor(logging_interval="step"),
        ]
        if self.ema is not None:
            callbacks.append(self.ema)
        if self.cfg.wandb.sync_from_login_node:
            from wandb_osh.lightning_hooks import TriggerWandbSyncLightningCallback

            callbacks.append(TriggerWandbSyncLightningCallback())
        trainer = self._trainer(
            train,
            "training",
            callbacks=callbacks,
            max_epochs=train.max_epochs,
            max_steps=train.max_steps,
            max_time=train.max_time,
            accumulate_grad_batches=train.optim.accumulate_grad_batches,
            gradient_clip_val=train.optim.gradient_clip_val,
            val_check_interval=val.val_every_n_step,
            check_val_every_n_epoch=val.val_every_n_epoch,
            limit_val_batches=val.limit_batch,
        )
        self._compile(train)
        trainer.fit(
            self.algorithm,
            train_dataloaders=self._loader("training", train),
            val_dataloaders=self._loader("validation", val),
            ckpt_path=str(self.resume_path) if self.resume_path else None,
            weights_only=not self.trusted,
        )
        trainer.save_checkpoint(checkpoint_dir / "last.ckpt")
        processes = f"{trainer.world_size} processes" if trainer.world_size > 1 else "1 process"
        last = checkpoint_dir / "last.ckpt"
        log.info("trained to step %d on %s; checkpoint: %s", trainer.global_step, processes, last)

    def validation(self) -> None:
        """Sample from the context frames of the validation clips and log metrics and videos."""
        self._evaluate("validation", self.cfg.experiment.validation)

    def test(self) -> None:
        """Like validation, on the test split (where a dataset has none, its validation episodes)."""
        self._evaluate("test", self.cfg.experiment.test)

    def _evaluate(self, split: str, stage: DictConfig) -> None:
        trainer = self._trainer(stage, split, limit_val_batches=stage.limit_batch, limit_test_batches=stage.limit_batch)
        self._compile(stage)
        loader = self._loader(split, stage)
        run = trainer.validate if split == "validation" else trainer.test
        resume = str(self.resume_path) if self.resume_path else None
        results = run(self.algorithm, dataloaders=loader, ckpt_path=resume, weights_only=not self.trusted)
        if trainer.is_global_zero:
            (self.output_dir / f"{split}_metrics.json").write_text(json.dumps(results[0] if results else {}, indent=2))


def _read_checkpoint(key: str, path: Path, trusted: bool) -> tuple[dict, str]:
    """The checkpoint at `path` and its layout: "original" (DF v1.5) or "current"; older layouts are refused."""
    checkpoint = load_checkpoint(key, path, trusted, mmap=True)
    return checkpoint, checkpoint_layout(key, checkpoint, path)


def _new_run_id() -> str:
    """An 8-character id in wandb's alphabet, also used when wandb is disabled."""
    from wandb.sdk.lib.runid import generate_id

    return generate_id()
