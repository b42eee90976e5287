"""Diffusion Forcing for video: the 3D U-Net backbone, action conditioning, rollouts and their evaluation."""

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from utils.perceptual_metrics import MetricWeightsConfig, PerceptualMetric, PerceptualMetrics
from utils.plots import plot_per_frame_curves
from utils.typed_config import ConfigError, require
from utils.video_baselines import baseline_predictions
from utils.video_io import side_by_side, write_video
from utils.video_metrics import frame_metrics, per_frame_errors

from .checkpoint_layouts import original_unet_key
from .df_base import DFBaseConfig, DiffusionForcingBase
from .models.diffusion import DiffusionConfig
from .models.unet3d import UNet3D, UNet3DConfig

MODEL = "model"  # the model's metrics are logged as `<stage>/<metric>`, a baseline's as `<stage>/<baseline>/<metric>`


@dataclass(frozen=True)
class VideoDiffusionConfig(DiffusionConfig):
    architecture: UNet3DConfig = field(default_factory=UNet3DConfig)


@dataclass(frozen=True)
class DFVideoConfig(DFBaseConfig):
    """`algorithm=df_video`: the shared DF keys plus the frame shape, rollout length and what to log."""

    x_shape: tuple[int, ...] = (3, 128, 128)
    diffusion: VideoDiffusionConfig = field(default_factory=VideoDiffusionConfig)
    validation_multiplier: int = 1
    clamp_frames: bool = False
    metrics: tuple[PerceptualMetric, ...] = ("fvd", "fid", "lpips")
    metric_weights: MetricWeightsConfig = field(default_factory=MetricWeightsConfig)
    logged_videos: int = 4
    video_fps: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.x_shape) == 3, "x_shape", f"must be [channels, height, width], got {list(self.x_shape)}")
        require(
            self.x_shape[1] == self.x_shape[2] == self.diffusion.architecture.resolution,
            "diffusion.architecture.resolution",
            f"{self.diffusion.architecture.resolution} does not match the frames' {self.x_shape[1]}x{self.x_shape[2]}",
        )
        require(self.validation_multiplier >= 1, "validation_multiplier", "must be >= 1")
        require(
            not (self.kv_cache and self.causal) or self.diffusion.architecture.frame_wise_norm,
            "kv_cache",
            "is exact only for a strictly causal network: DF v1.5's GroupNorm pools every frame of the window, so "
            "also set algorithm.diffusion.architecture.frame_wise_norm=true (or kv_cache=false)",
        )
        require(self.logged_videos >= 0, "logged_videos", "must be >= 0")
        require(len(set(self.metrics)) == len(self.metrics), "metrics", f"lists a metric twice: {list(self.metrics)}")


class DiffusionForcingVideo(DiffusionForcingBase):
    """Video prediction from `context_frames` frames, one noise level per frame."""

    original_prefix = "diffusion_model.model.module."
    original_key = staticmethod(original_unet_key)

    def __init__(self, config: DFVideoConfig) -> None:
        network = UNet3D(
            config.diffusion.architecture, config.x_shape[0], config.external_cond_dim, causal=config.causal
        )
        super().__init__(config, config.diffusion, network)
        self._videos: list[tuple[Tensor, Tensor]] = []
        self._frame_errors: dict[str, dict[str, Tensor]] = {}
        self.perceptual = PerceptualMetrics(config.metrics, config.metric_weights)
        self._clips = 0

    @classmethod
    def adapt_to_original(cls, config: DFVideoConfig) -> tuple[DFVideoConfig, list[str]]:
        """DF v1.5's video models are not action-conditioned: build ours without `external_cond_dim` too."""
        if not config.external_cond_dim:
            return config, []
        line = (
            f"DF v1.5 video checkpoints take no actions: external_cond_dim {config.external_cond_dim} -> 0 "
            "(set dataset.external_cond_dim=0 to say so yourself)"
        )
        return replace(config, external_cond_dim=0), [line]

    def original_extras(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Nothing to take, but DF v1.5 normalised frames by data_mean/std: ours are x·2−1, i.e. 0.5 / 0.5."""
        mean, std = state.get("data_mean", torch.tensor(0.5)), state.get("data_std", torch.tensor(0.5))
        if not (torch.allclose(mean, torch.tensor(0.5)) and torch.allclose(std, torch.tensor(0.5))):
            raise ConfigError(
                "load",
                f"the checkpoint normalises frames with mean {mean.tolist()} and std "
                f"{std.tolist()}; this project's video datasets give (pixels − 0.5) / 0.5",
            )
        return {}

    def tokens(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None, None]:
        # videos: (B, T, C, H, W) in [-1, 1]; actions: (B, T, A)
        cond = batch.get("actions") if self.config.external_cond_dim else None
        return batch["videos"], cond, None

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "validation")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def _evaluate(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        """Roll out from the context frames over the whole clip; log frame metrics, keep videos to write."""
        videos, cond, _ = self.tokens(batch)
        n_context = max(self.config.context_frames, 1)
        generator = torch.Generator(device=videos.device).manual_seed(batch_idx)
        prediction = self.sampler.rollout(videos[:, :n_context], videos.shape[1], cond, generator, progress=True)
        if self.config.clamp_frames:
            prediction = prediction.clamp(-1, 1)
        generated, truth = (prediction[:, n_context:] + 1) / 2, (videos[:, n_context:] + 1) / 2
        baselines = baseline_predictions((videos[:, :n_context] + 1) / 2, truth.shape[1])
        for predictor, frames in ({MODEL: generated} | baselines).items():
            prefix = stage if predictor == MODEL else f"{stage}/{predictor}"
            metrics = frame_metrics(frames, truth)
            self.log_dict({f"{prefix}/{k}": v for k, v in metrics.items()}, batch_size=len(videos), sync_dist=True)
            for name, summed in per_frame_errors(frames, truth).items():
                curve = self._frame_errors.setdefault(name, {})
                curve[predictor] = curve.get(predictor, 0) + summed.cpu()
        self._clips += len(videos)
        self.perceptual.update((prediction + 1) / 2, (videos + 1) / 2)
        room = self.config.logged_videos - len(self._videos)
        self._videos.extend(zip(prediction[:room].cpu(), videos[:room].cpu(), strict=True))

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("validation")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _finish_evaluation(self, stage: str) -> None:
        scores = self.perceptual.compute()
        self.log_dict({f"{stage}/{name}": value for name, value in scores.items()})
        self._write_videos(stage)
        self._write_frame_curves(stage)

    def _write_frame_curves(self, stage: str) -> None:
        """Per-frame MSE / PSNR of the model and the baselines against the frame index: how a (long) rollout
        drifts from the ground truth, and from when on copying the last context frame would have done better."""
        errors, clips, self._frame_errors, self._clips = self._frame_errors, self._clips, {}, 0
        if not errors or not self.trainer.is_global_zero:
            return
        curves = {metric: {who: (s / clips).numpy() for who, s in lines.items()} for metric, lines in errors.items()}
        folder = Path(self.trainer.default_root_dir) / "plots"
        path = plot_per_frame_curves(
            folder / f"{stage}_per_frame_step{self.step}.png",
            curves,
            n_context=max(self.config.context_frames, 1),
            window=self.config.n_frames,
            title=f"{stage}: {clips} clips, {self.config.validation_multiplier}× the training length",
        )
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(f"{stage}/per_frame_error", [str(path)], step=self.step)

    def _write_videos(self, stage: str) -> None:
        """Prediction | ground truth MP4s into `<run dir>/videos/` and, when wandb is on, the wandb run."""
        videos, self._videos = self._videos, []
        if not videos or not self.trainer.is_global_zero:
            return
        folder = Path(self.trainer.default_root_dir) / "videos"
        paths = [
            str(write_video(folder / f"{stage}_step{self.step}_{i}.mp4", side_by_side(p, g), self.config.video_fps))
            for i, (p, g) in enumerate(videos)
        ]
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_video(f"{stage}/prediction_vs_truth", paths, step=self.step, format=["mp4"] * len(paths))
