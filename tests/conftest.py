"""Shared fixtures: the real Hydra config shrunk to CPU-sized runs, and one tiny Crafter dataset per session."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from datasets.video.crafter_video import CrafterDatasetConfig, CrafterVideoDataset
from utils.typed_config import build

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(ROOT / "configurations")

TINY_EPISODES = {"training": 3, "validation": 2}
TINY_EPISODE_LENGTH = 24
TINY_RENDER = 32


def tiny_overrides(data_dir: Path, outputs: Path) -> list[str]:
    """Overrides that keep the user's composition path but shrink data, model and schedule to seconds on CPU."""
    return [
        *tiny_run_overrides(outputs),
        f"dataset.save_dir={data_dir}",
        f"dataset.training_episodes={TINY_EPISODES['training']}",
        f"dataset.validation_episodes={TINY_EPISODES['validation']}",
        f"dataset.episode_length={TINY_EPISODE_LENGTH}",
        f"dataset.render_size={TINY_RENDER}",
    ]


def tiny_run_overrides(outputs: Path) -> list[str]:
    """The dataset-independent part: tiny clips, model, schedule and trainer, no logger."""
    return [
        "+name=test",
        f"output_root={outputs}",
        "wandb.mode=disabled",
        "algorithm.metrics=[]",
        "dataset.resolution=16",
        "dataset.n_frames=4",
        "algorithm.diffusion.sampling_timesteps=2",
        "algorithm.diffusion.architecture.network_size=8",
        "algorithm.diffusion.architecture.dim_mults=[1,2]",
        "algorithm.diffusion.architecture.attn_resolutions=[8]",
        "algorithm.diffusion.architecture.attn_heads=1",
        "algorithm.diffusion.architecture.attn_dim_head=8",
        "algorithm.logged_videos=1",
        "experiment.accelerator=cpu",
        "experiment.training.max_steps=2",
        "experiment.training.batch_size=2",
        "experiment.training.data.num_workers=0",
        "experiment.training.checkpointing.every_n_train_steps=1",
        "experiment.validation.batch_size=2",
        "experiment.validation.val_every_n_step=1000",
        "experiment.validation.data.num_workers=0",
        "experiment.test.batch_size=2",
        "experiment.test.data.num_workers=0",
    ]


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose `configurations/config.yaml` exactly as `python -m main` does, with the run dir set."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose(config_name="config", overrides=[*overrides, f"hydra.run.dir={output_dir}"])
    OmegaConf.set_readonly(cfg, True)
    return cfg


@pytest.fixture(scope="session")
def crafter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Crafter episodes, generated once per session (the same generator the demo uses)."""
    root = tmp_path_factory.mktemp("crafter")
    cfg = compose_config(tiny_overrides(root, root / "unused"), root / "unused")
    for split in TINY_EPISODES:
        CrafterVideoDataset(build(CrafterDatasetConfig, cfg.dataset, "dataset"), split)
    return root


@pytest.fixture
def tiny(crafter_dir: Path, tmp_path: Path) -> list[str]:
    return tiny_overrides(crafter_dir, tmp_path / "outputs")


@pytest.fixture
def run_main(tmp_path: Path):
    """Run the real entry point in-process on a composed config; returns the run directory."""
    from main import run

    counter = iter(range(1000))

    def _run(overrides: list[str]) -> Path:
        outputs = next(o.split("=", 1)[1] for o in overrides if o.startswith("output_root="))
        output_dir = Path(outputs) / f"run{next(counter)}"
        cfg = compose_config(overrides, output_dir)
        (output_dir / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, output_dir / ".hydra" / "config.yaml")  # as Hydra's own run writes it
        run(cfg, output_dir)
        return output_dir

    return _run


def run_cli(args: list[str], cwd: Path, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m main <args>` as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_id(output_dir: Path) -> str:
    return json.loads((output_dir / "run.json").read_text())["id"]


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
