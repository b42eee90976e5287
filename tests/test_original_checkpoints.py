"""Checkpoints of the original DF v1.5 code load through `load=` and reproduce the original network's outputs.

Data-driven over every `<name>.ckpt` (with `<name>.io.pt` and `<name>.overrides`) in the folder named by
`DF15_FIXTURES` (default: the shipped tiny fixtures), so the same test runs unchanged on full-size checkpoints.
Each one: the config composed from the original's command-line overrides plus `load=`, the algorithm built and
loaded by the function `main` uses, one forward pass on the stored inputs, compared with the stored outputs.
"""

import os
from pathlib import Path

import pytest
import torch

from experiments import experiment_class
from tests.conftest import ROOT, compose_config

FIXTURES = Path(os.environ.get("DF15_FIXTURES", ROOT.parent / "shared" / "fixtures" / "df15"))
CHECKPOINTS = sorted(FIXTURES.glob("*.ckpt"))


def build_from_original(checkpoint: Path, tmp_path: Path, extra: list[str] | None = None):
    """The algorithm `main` builds for the checkpoint's own overrides (plus `extra`) and `load=`, in eval mode."""
    overrides = [*checkpoint.with_suffix(".overrides").read_text().split(), *(extra or [])]
    cfg = compose_config([*overrides, f"load={checkpoint}", "+name=original", "wandb.mode=disabled"], tmp_path)
    return experiment_class(cfg.experiment._name).build_algorithm(cfg, Path(cfg.load)).eval()


@pytest.mark.skipif(not CHECKPOINTS, reason=f"no DF v1.5 checkpoints in {FIXTURES}")
@pytest.mark.parametrize("checkpoint", CHECKPOINTS, ids=lambda path: path.stem)
def test_original_checkpoint_reproduces_its_outputs(checkpoint: Path, tmp_path: Path) -> None:
    algorithm = build_from_original(checkpoint, tmp_path)
    io = torch.load(checkpoint.with_suffix(".io.pt"), map_location="cpu")
    with torch.no_grad():
        output = algorithm.model(io["x"], io["noise_levels"])
    tolerance = 1e-4 if sum(p.numel() for p in algorithm.parameters()) < 1_000_000 else 1e-3
    torch.testing.assert_close(output, io["output"], atol=tolerance, rtol=0)
