"""Shrink a training checkpoint to the weights `load=` needs, for shipping a model in the repository.

    python -m utils.export_weights <run dir>/checkpoints/last.ckpt pretrained/crafter_demo.ckpt

A training checkpoint also holds the optimiser's moments and, with `experiment.ema`, the raw weights beside the
average: three to four times the size of the model. The export keeps `state_dict` (the EMA weights when EMA was
on), the layout marker and the step.
"""

import argparse
from pathlib import Path

from algorithms.diffusion_forcing.checkpoint_layouts import LAYOUT_KEY
from utils.atomic_checkpoint_io import atomic_save
from utils.checkpoints import load_checkpoint

KEPT = (LAYOUT_KEY, "global_step", "epoch", "pytorch-lightning_version")


def export_weights(source: Path, destination: Path) -> Path:
    """Write the weights-only copy of `source` to `destination`; returns `destination`."""
    checkpoint = load_checkpoint("source", source)
    exported = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    exported["state_dict"] = {name: tensor.clone() for name, tensor in checkpoint["state_dict"].items()}
    atomic_save(exported, destination)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a training checkpoint (.ckpt)")
    parser.add_argument("destination", type=Path, help="where to write the weights-only checkpoint")
    args = parser.parse_args()
    path = export_weights(args.source, args.destination)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
