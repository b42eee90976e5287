"""`experiment=exp_video`: Diffusion Forcing video prediction."""

from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset
from datasets.video.dmlab_video import DMLabVideoDataset
from datasets.video.minecraft_video import MinecraftVideoDataset
from datasets.video.simulated_episodes import SimulatedDatasetConfig
from datasets.video.teco_dataset import TecoDatasetConfig
from datasets.video.vizdoom_video import VizdoomVideoDataset

from .base_experiment import BaseLightningExperiment


class VideoPredictionExperiment(BaseLightningExperiment):
    compatible_algorithms = {"df_video": (DFVideoConfig, DiffusionForcingVideo)}
    compatible_datasets = {
        "video_crafter": (CrafterDatasetConfig, CrafterVideoDataset),
        "video_dmlab": (TecoDatasetConfig, DMLabVideoDataset),
        "video_minecraft": (TecoDatasetConfig, MinecraftVideoDataset),
        "video_vizdoom": (SimulatedDatasetConfig, VizdoomVideoDataset),
    }
