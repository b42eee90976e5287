"""How much a trained video model uses its context frames and its actions, on a run's own validation clips.

    python -m benchmarks.context_use outputs/<date>/<time>                 # that run's last.ckpt
    python -m benchmarks.context_use outputs/<date>/<time> --checkpoint step=500.ckpt --levels 100 500 900

For each noise level it prints the MSE of the model's x̂₀ of the first generated frame with the clip's own
context and with another clip's (`algorithms/diffusion_forcing/context_probe.py`), with its own context but another
clip's action (action-conditioned models), beside copying the last context frame: own ≪ other means the context
reaches the prediction, own ≈ other means it does not; likewise own against other actions.
"""

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from algorithms.diffusion_forcing.context_probe import context_probe
from experiments.exp_video import VideoPredictionExperiment

COLUMN_TITLES = {
    "own": "own context",
    "other": "other context",
    "other_actions": "other actions",
    "copy_last": "copy last",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a training run's directory (holds .hydra/ and checkpoints/)")
    parser.add_argument("--checkpoint", default="last.ckpt", help="file name under <run_dir>/checkpoints/")
    parser.add_argument("--levels", type=int, nargs="+", default=[100, 500, 900])
    parser.add_argument("--clips", type=int, default=8, help="validation clips (one per episode, from frame 0)")
    args = parser.parse_args()

    cfg = OmegaConf.load(args.run_dir / ".hydra" / "config.yaml")
    algorithm = VideoPredictionExperiment.build_algorithm(cfg, args.run_dir / "checkpoints" / args.checkpoint).eval()
    dataset = VideoPredictionExperiment.build_dataset(cfg, "validation")
    batch = next(iter(DataLoader(dataset, batch_size=args.clips)))
    videos, cond, _ = algorithm.tokens(batch)
    n_context = max(algorithm.config.context_frames, 1)
    print(f"{args.run_dir} ({args.checkpoint}, step {algorithm.step}), {len(videos)} clips, frame {n_context}")
    columns = [key for key in COLUMN_TITLES if cond is not None or key != "other_actions"]
    print(f"{'level':>6} " + " ".join(f"{COLUMN_TITLES[key]:>14}" for key in columns))
    for level in args.levels:
        generator = torch.Generator().manual_seed(level)
        scores = context_probe(algorithm.sampler, videos, n_context, level, cond, generator)
        print(f"{level:>6} " + " ".join(f"{scores[key]:>14.5f}" for key in columns))


if __name__ == "__main__":
    main()
