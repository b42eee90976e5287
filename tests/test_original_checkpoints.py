"""Checkpoints of the original DF v1.5 code load through `load=` and reproduce the original network's outputs.

Data-driven over every `<name>.ckpt` (with `<name>.io.pt` and `<name>.overrides`) in the folder named by
`DF15_FIXTURES` (default: the shipped tiny fixtures), so the same test runs unchanged on full-size checkpoints.
Each one: the config composed from the original's command-line overrides plus `load=`, the algorithm built and
loaded by the function `main` uses, one forward pass on the stored inputs, compared with the stored outputs.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from experiments import experiment_class
from tests.conftest import ROOT, compose_config

FIXTURES = Path(os.environ.get("DF15_FIXTURES", ROOT / "tests" / "fixtures" / "df15"))
CHECKPOINTS = sorted(FIXTURES.glob("*.ckpt"))
LAYOUTS = ROOT / "tests" / "fixtures" / "df15"
# The seed README's commands behind the full-size key listings (DMLab, Minecraft, maze2d medium / large).
SEED_COMMANDS = {
    "df15_dmlab": "algorithm=df_video dataset=video_dmlab algorithm.weight_decay=1e-3 "
    "algorithm.diffusion.architecture.network_size=48 algorithm.diffusion.architecture.attn_dim_head=32 "
    "algorithm.diffusion.architecture.attn_resolutions=[8,16,32,64] algorithm.diffusion.beta_schedule=cosine",
    "df15_minecraft": "algorithm=df_video dataset=video_minecraft",
    "df15_maze2d_medium": "experiment=exp_planning algorithm=df_planning dataset=maze2d_medium "
    "dataset.action_mean=[] dataset.action_std=[] dataset.observation_mean=[3.5092521,3.4765592] "
    "dataset.observation_std=[1.3371079,1.52102]",
    "df15_maze2d_large": "experiment=exp_planning algorithm=df_planning dataset=maze2d_large "
    "dataset.observation_mean=[3.7296331,5.3047247] dataset.observation_std=[1.8070312,2.5687592] "
    "dataset.action_mean=[] dataset.action_std=[]",
}


def build_from_original(checkpoint: Path, tmp_path: Path, extra: list[str] | None = None):
    """The algorithm `main` builds for the checkpoint's own overrides (plus `extra`) and `load=`, in eval mode."""
    overrides = [*checkpoint.with_suffix(".overrides").read_text().split(), *(extra or [])]
    cfg = compose_config([*overrides, f"load={checkpoint}", "+name=original", "wandb.mode=disabled"], tmp_path)
    return experiment_class(cfg.experiment._name).build_algorithm(cfg, Path(cfg.load)).eval()


@pytest.mark.skipif(not CHECKPOINTS, reason=f"no DF v1.5 checkpoints in {FIXTURES}")
@pytest.mark.parametrize("checkpoint", CHECKPOINTS, ids=lambda path: path.stem)
@pytest.mark.parametrize("gradients", [False, True], ids=["inference", "with_gradients"])
def test_original_checkpoint_reproduces_its_outputs(checkpoint: Path, gradients: bool, tmp_path: Path) -> None:
    # with gradients PyTorch's encoder layers leave their inference fast path: the planner's own attention runs
    algorithm = build_from_original(checkpoint, tmp_path)
    io = torch.load(checkpoint.with_suffix(".io.pt"), map_location="cpu")
    with torch.set_grad_enabled(gradients):
        output = algorithm.model(io["x"].requires_grad_(gradients), io["noise_levels"])
    tolerance = 1e-4 if sum(p.numel() for p in algorithm.parameters()) < 1_000_000 else 1e-3
    torch.testing.assert_close(output.detach(), io["output"], atol=tolerance, rtol=0)


@pytest.mark.parametrize("name", sorted(SEED_COMMANDS))
def test_full_size_networks_map_one_to_one_onto_the_original_layouts(name: str, tmp_path: Path) -> None:
    """Every weight of the seed README's full-size models has exactly one counterpart, of the same shape."""
    original = json.loads((LAYOUTS / f"{name}.keys.json").read_text())
    no_actions = ["dataset.external_cond_dim=0"] if "df_video" in SEED_COMMANDS[name] else []  # as DF v1.5's
    overrides = [*SEED_COMMANDS[name].split(), *no_actions, "+name=layout", "wandb.mode=disabled"]
    cfg = compose_config(overrides, tmp_path)
    algorithm = experiment_class(cfg.experiment._name).build_algorithm(cfg)
    prefix = algorithm.original_prefix
    ours = {prefix + algorithm.original_key(k): list(v.shape) for k, v in algorithm.model.state_dict().items()}
    theirs = {k: v[:2] + v[3:] if len(v) == 5 else v for k, v in original.items() if k.startswith(prefix)}
    assert ours == {k: v for k, v in theirs.items() if not k.endswith(".freqs")}
