"""`experiment=exp_video`: Diffusion Forcing video prediction."""

import dataclasses
import json
import logging
from functools import partial
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.data import default_collate

from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from algorithms.diffusion_forcing.stability import StabilityReport, measure_stability
from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset
from datasets.video.dmlab_video import DMLabVideoDataset
from datasets.video.minecraft_video import MinecraftVideoDataset
from datasets.video.simulated_episodes import SimulatedDatasetConfig
from datasets.video.teco_dataset import TecoDatasetConfig
from datasets.video.vizdoom_video import VizdoomVideoDataset
from utils.checkpoints import resolve_checkpoint
from utils.drift_metrics import VideoStatistics
from utils.plots import plot_per_frame_curves

from .base_experiment import BaseLightningExperiment
from .experiment_config import VideoExperimentConfig

log = logging.getLogger(__name__)
STABILITY_DIR = "stability"


class VideoPredictionExperiment(BaseLightningExperiment):
    compatible_algorithms = {"df_video": (DFVideoConfig, DiffusionForcingVideo)}
    compatible_datasets = {
        "video_crafter": (CrafterDatasetConfig, CrafterVideoDataset),
        "video_dmlab": (TecoDatasetConfig, DMLabVideoDataset),
        "video_minecraft": (TecoDatasetConfig, MinecraftVideoDataset),
        "video_vizdoom": (SimulatedDatasetConfig, VizdoomVideoDataset),
    }
    config_class = VideoExperimentConfig

    def stability(self) -> None:
        """Roll this run's model, and the runs in `experiment.stability.compare`, out `multiple`× the training
        length from the same validation clips and actions; write per-frame error and drift, a plot and a table
        to `<run dir>/stability/` and the logger."""
        settings = self.config.stability
        length = self.dataset_config.n_frames
        long_clips = dataclasses.replace(self.dataset_config, validation_multiplier=settings.multiple)
        validation = self.build_dataset(self.cfg, "validation", long_clips)
        training = self.build_dataset(self.cfg, "training", self.dataset_config)
        videos, actions, _ = self.algorithm.tokens(_first(validation, settings.clips))
        real_clips = self.algorithm.tokens(_first(training, settings.reference_clips))[0]
        reference = VideoStatistics.per_frame((real_clips + 1) / 2).pooled()
        models = {self._method_name(self.cfg, "this run"): self.algorithm}
        for entry in settings.compare:
            cfg, algorithm = self._compared_run(entry)
            models[self._method_name(cfg, Path(entry).stem if entry.endswith(".ckpt") else entry)] = algorithm
        device = self._sampling_device()
        rollouts = {
            name: partial(model.eval().to(device).sampler.rollout, progress=True) for name, model in models.items()
        }
        n_context = max(self.algorithm.config.context_frames, 1)
        actions = None if actions is None else actions.to(device)
        report = measure_stability(rollouts, videos.to(device), actions, n_context, length, reference)
        self._write_stability(report, settings.multiple, len(models))

    def _sampling_device(self) -> torch.device:
        """The accelerator `experiment.accelerator` asks for, where this machine has it (as Lightning picks)."""
        wanted = self.config.accelerator
        if torch.cuda.is_available() and wanted in ("auto", "gpu", "cuda"):
            return torch.device("cuda")
        if torch.backends.mps.is_available() and wanted in ("auto", "gpu", "mps"):
            return torch.device("mps")
        return torch.device("cpu")

    @staticmethod
    def _method_name(cfg: object, source: str) -> str:
        return f"{cfg.algorithm.noise_level} ({source})"

    def _compared_run(self, entry: str) -> tuple[object, DiffusionForcingVideo]:
        """The config and weights of another run, found like `load=` finds them."""
        key = "experiment.stability.compare"
        path = resolve_checkpoint(
            key, entry, Path(self.cfg.output_root), False, None, "", self.output_dir, self.trusted
        )
        cfg = OmegaConf.load(path.parent.parent / ".hydra" / "config.yaml")
        return cfg, self.build_algorithm(cfg, path)

    def _write_stability(self, report: StabilityReport, multiple: int, n_models: int) -> None:
        folder = self.output_dir / STABILITY_DIR
        multiples = sorted({1, *(m for m in (2, 4, 8, 16, 32) if m <= multiple), multiple})
        rows = report.table(multiples)
        columns = list(rows[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join("—" if row[c] is None else str(row[c]) for c in columns) + " |" for row in rows]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "table.md").write_text(f"drift threshold {report.threshold:.3f}\n\n" + "\n".join(lines) + "\n")
        windows = {name: report.window_drift(name) for name in report.statistics}
        curves = {name: {statistic: values.tolist() for statistic, values in w.items()} for name, w in windows.items()}
        summary = {"threshold": report.threshold, "table": rows, "window_drift": curves}
        summary["mse"] = {name: values.tolist() for name, values in report.error.items()}
        (folder / "stability.json").write_text(json.dumps(summary, indent=1))
        n = report.n_context
        plotted = {
            "mse": {name: values.numpy() for name, values in report.error.items()},
            "window drift": {name: window["drift"][n:].numpy() for name, window in windows.items()},
        }
        title = (
            f"{multiple}× the training length ({report.training_length} frames), {n_models} model(s); "
            f"drift threshold {report.threshold:.2f}"
        )
        plot = plot_per_frame_curves(folder / "per_frame.png", plotted, n, report.training_length, title, n_models)
        log.info("stability (%s):\n%s", folder, "\n".join(lines))
        if self.logger is not None and hasattr(self.logger, "log_table"):
            self.logger.log_table("stability/table", columns=columns, data=[[r[c] for c in columns] for r in rows])
            self.logger.log_image("stability/per_frame", [str(plot)])


def _first(dataset: torch.utils.data.Dataset, count: int) -> dict:
    """A batch of the first `count` items (fewer if the dataset is smaller)."""
    return default_collate([dataset[i] for i in range(min(count, len(dataset)))])
