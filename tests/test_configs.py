"""Every config composes and builds its typed objects; the original's key names and command lines are accepted."""

from pathlib import Path

import pytest

from experiments import EXPERIMENTS
from tests.conftest import CONFIG_DIR, compose_config
from utils.typed_config import build


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml") if p.stem != "base_pytorch")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_with_its_algorithms_and_datasets(experiment: str, tmp_path: Path) -> None:
    cls = EXPERIMENTS[experiment]
    for algorithm, (algorithm_config, _) in cls.compatible_algorithms.items():
        for dataset, (dataset_config, _) in cls.compatible_datasets.items():
            overrides = ["+name=x", f"experiment={experiment}", f"algorithm={algorithm}", f"dataset={dataset}"]
            cfg = compose_config(overrides, tmp_path)
            build(algorithm_config, cfg.algorithm, "algorithm")
            build(dataset_config, cfg.dataset, "dataset")


def test_registered_experiments_have_configs() -> None:
    assert set(EXPERIMENTS) == set(options("experiment"))


def test_default_is_the_embedded_demo(tmp_path: Path) -> None:
    cfg = compose_config(["+name=x"], tmp_path)
    assert cfg.experiment._name == "exp_video"
    assert cfg.dataset._name == "video_crafter"
    assert cfg.algorithm._name == "df_video"
    assert cfg.wandb.mode == "offline" and cfg.wandb.entity is None
    assert cfg.algorithm.diffusion.architecture.resolution == cfg.dataset.resolution == 32


def test_original_recipe_without_the_demo_override(tmp_path: Path) -> None:
    """df_video.yaml carries the v1.5 recipe; only the crafter pairing shrinks it."""
    from omegaconf import OmegaConf

    recipe = OmegaConf.load(Path(CONFIG_DIR) / "algorithm" / "df_video.yaml")
    assert recipe.diffusion.architecture.network_size == 64
    assert list(recipe.diffusion.architecture.dim_mults) == [1, 2, 4, 8]
    assert recipe.diffusion.objective == "pred_v" and recipe.diffusion.beta_schedule == "sigmoid"
    assert recipe.diffusion.stabilization_level == 15 and recipe.diffusion.cum_snr_decay == 0.96


SEED_DMLAB_OVERRIDES = [
    "algorithm=df_video",
    "algorithm.weight_decay=1e-3",
    "algorithm.diffusion.architecture.network_size=48",
    "algorithm.diffusion.architecture.attn_dim_head=32",
    "algorithm.diffusion.architecture.attn_resolutions=[8,16,32,64]",
    "algorithm.diffusion.beta_schedule=cosine",
]


def test_seed_command_line_keys(tmp_path: Path) -> None:
    from algorithms.diffusion_forcing.df_video import DFVideoConfig

    overrides = [
        "+name=your_experiment_name",
        *SEED_DMLAB_OVERRIDES,
        "algorithm.causal=False",
        "algorithm.scheduling_matrix=full_sequence",
        "algorithm.chunk_size=2",
        "dataset.validation_multiplier=8",
        "experiment.tasks=[validation]",
        "experiment.training.max_steps=10",
        "experiment.training.batch_size=2",
        "experiment.validation.limit_batch=1",
        "debug=True",
        "wandb.mode=disabled",
        "wandb.entity=someone",
    ]
    config = build(DFVideoConfig, compose_config(overrides, tmp_path).algorithm, "algorithm")
    assert config.diffusion.architecture.network_size == 48
    assert config.diffusion.beta_schedule == "cosine"
    assert config.weight_decay == 1e-3 and config.causal is False and config.debug is True
    assert config.scheduling_matrix == "full_sequence" and config.chunk_size == 2
    assert config.validation_multiplier == 8


def test_the_demo_recipe_loads_the_shipped_weights(tmp_path: Path) -> None:
    """`make demo` = `+recipe=crafter_demo`: the weights this project ships fit the demo's network as they are."""
    from experiments.exp_video import VideoPredictionExperiment
    from tests.conftest import ROOT, compose_config

    cfg = compose_config(["+name=demo", "+recipe=crafter_demo"], tmp_path / "run")
    shipped = ROOT / cfg.load
    assert shipped.stat().st_size < 25 * 2**20
    algorithm = VideoPredictionExperiment.build_algorithm(cfg, shipped)
    assert algorithm.step > 0 and cfg.dataset.render_size == cfg.dataset.resolution == 32
