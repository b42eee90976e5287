"""`experiment=exp_video`: Diffusion Forcing video prediction."""

from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset

from .base_experiment import BaseLightningExperiment


class VideoPredictionExperiment(BaseLightningExperiment):
    compatible_algorithms = {"df_video": (DFVideoConfig, DiffusionForcingVideo)}
    compatible_datasets = {"video_crafter": (CrafterDatasetConfig, CrafterVideoDataset)}
