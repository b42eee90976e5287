"""`experiment=exp_planning`: Diffusion Forcing maze planning on D4RL maze2d."""

from algorithms.diffusion_forcing.df_planning import DFPlanningConfig, DiffusionForcingPlanning
from datasets.maze2d.hdf5 import check_hdf5
from datasets.maze2d.maze2d_dataset import Maze2dDataset, Maze2dDatasetConfig, prepare

from .base_experiment import BaseLightningExperiment


class PlanningExperiment(BaseLightningExperiment):
    compatible_algorithms = {"df_planning": (DFPlanningConfig, DiffusionForcingPlanning)}
    compatible_datasets = {
        "maze2d_umaze": (Maze2dDatasetConfig, Maze2dDataset),
        "maze2d_medium": (Maze2dDatasetConfig, Maze2dDataset),
        "maze2d_large": (Maze2dDatasetConfig, Maze2dDataset),
    }

    def _prepare_data(self) -> None:
        """Download or generate the training file and check its keys before any training starts."""
        if "training" in self.cfg.experiment.tasks:
            config = self.dataset_config
            check_hdf5(prepare(config), "dataset.dataset_url" if config.dataset_url else "dataset.save_dir")
