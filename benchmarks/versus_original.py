"""This project's cost beside DF v1.5's on the workloads the speed targets name, each in its own process.

    python -m benchmarks.versus_original                        # every workload (about 10 min on 2 CPU cores)
    python -m benchmarks.versus_original --only training_step   # one of them
    python -m benchmarks.versus_original --device cuda

Every workload runs in a fresh process (peak memory is per process on the CPU), once on the path a plain config
takes ("previous": what the original computes, recompute every frame, keep every activation) and once on the
path this project offers for it (key/value cache, activation checkpointing), then prints the seconds, the peak
memory, their ratio and the ratio to the original's figure. The original's figures were measured with its own
code on a 2-core CPU of this machine class, fp32, random weights, each workload in its own process; on another
machine only the previous/offered ratio carries over.
"""

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass

import torch
from lightning.pytorch import LightningModule

from benchmarks.common import median_seconds, peak_memory_mb, pick_device, video_model
from benchmarks.plan_speed import load_planner, plan_seconds
from benchmarks.sample_speed import timed_rollout


@dataclass(frozen=True)
class Workload:
    description: str
    original_seconds: float | None  # DF v1.5 on a 2-core CPU of this machine class
    original_memory_mb: float | None
    paths: dict[str, list[str]]  # path name → config overrides; the first is the previous path


CACHEABLE = ["algorithm.diffusion.architecture.frame_wise_norm=true"]
WORKLOADS = {
    "forward": Workload("DMLab forward pass, 16 frames, batch 1", 2.3, None, {"network": []}),
    "rollout": Workload(
        "DMLab autoregressive rollout 2 → 16 frames, 10 steps, chunk 1, batch 1",
        144.5,
        None,
        {"recompute": [*CACHEABLE, "algorithm.kv_cache=false"], "kv_cache": [*CACHEABLE, "algorithm.kv_cache=true"]},
    ),
    "full_sequence": Workload(
        "DMLab full_sequence sampling, chunk -1, 10 steps",
        22.6,
        None,
        {"recompute": ["algorithm.scheduling_matrix=full_sequence", "algorithm.chunk_size=-1"]},
    ),
    "training_step": Workload(
        "DMLab training step, batch 2",
        12.6,
        5.5 * 1024,
        {
            "every activation kept": [],
            "checkpointing 64² and 32²": ["algorithm.diffusion.architecture.use_checkpointing=[true,true,false,false]"],
        },
    ),
    "planner_training_step": Workload(
        "maze2d-medium planner training step, batch 1024", 12.5, 6.6 * 1024, {"default": []}
    ),
    "guided_plan": Workload(
        "one maze plan, horizon 600, 50 steps, guided through the network", 1.6, None, {"default": []}
    ),
    "unguided_plan": Workload("one maze plan, horizon 600, 50 steps, unguided", 0.66, None, {"default": []}),
}


def sampling_seconds(overrides: list[str], device: torch.device) -> float:
    model = video_model("dmlab", ["algorithm.diffusion.sampling_timesteps=10", *overrides]).to(device)
    context = torch.rand(1, 2, *model.config.x_shape, generator=torch.Generator().manual_seed(1)).to(device) * 2 - 1
    with torch.no_grad():
        timed_rollout(model, model.config.kv_cache, context, None, 3, device, torch.float32)  # warm-up
        return timed_rollout(model, model.config.kv_cache, context, None, 16, device, torch.float32)[1]


def video_training_seconds(overrides: list[str], device: torch.device, repeats: int) -> float:
    model = video_model("dmlab", overrides).to(device)
    c = model.config
    batch = {"videos": torch.rand(2, c.n_frames, *c.x_shape, device=device) * 2 - 1, "actions": None}
    return training_step_seconds(model, batch, device, repeats)


def planner_training_seconds(overrides: list[str], device: torch.device, repeats: int) -> float:
    model, dataset = load_planner(overrides, None, device)
    steps = dataset.episode_len + 1
    batch = {
        "observations": torch.randn(1024, steps, 4, device=device) + 3,
        "actions": torch.randn(1024, steps, 2, device=device),
    }
    return training_step_seconds(model, batch, device, repeats)


def training_step_seconds(model: LightningModule, batch: dict, device: torch.device, repeats: int) -> float:
    """Median seconds of an AdamW step on the module's own training loss for `batch`."""
    model.train()
    model.log = lambda *args, **kwargs: None  # no trainer attached: logging is not what is measured
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.training_step(batch, 0).backward()
        optimizer.step()

    return median_seconds(step, device, repeats)


def measure(name: str, overrides: list[str], device: torch.device, repeats: int) -> dict[str, float]:
    """Seconds and peak memory of one workload on one path, in this process."""
    torch.manual_seed(0)
    if name == "forward":
        model = video_model("dmlab", overrides).to(device)
        x = torch.rand(1, 16, *model.config.x_shape, device=device) * 2 - 1
        levels = torch.randint(0, 1000, (1, 16), device=device)
        with torch.no_grad():
            seconds = median_seconds(lambda: model.model(x, levels), device, repeats)
    elif name in ("rollout", "full_sequence"):
        seconds = sampling_seconds(overrides, device)
    elif name == "training_step":
        seconds = video_training_seconds(overrides, device, repeats)
    elif name == "planner_training_step":
        seconds = planner_training_seconds(overrides, device, repeats)
    else:
        model, _ = load_planner(overrides, None, device)
        scale = (model.config.guidance_scale or 2.0) if name == "guided_plan" else 0.0
        seconds = median_seconds(lambda: plan_seconds(model, scale, False, 1, device), device, repeats)
    return {"seconds": seconds, "memory_mb": peak_memory_mb(device)}


def ratio(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}" if value and reference else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--measure", nargs=2, metavar=("WORKLOAD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.measure:
        workload, path = args.measure
        print(json.dumps(measure(workload, WORKLOADS[workload].paths[path], device, args.repeats)))
        return
    print(f"{device.type}, fp32; original = DF v1.5 on 2 CPU cores of this machine class")
    for name in args.only:
        workload = WORKLOADS[name]
        print(f"\n{name}: {workload.description}")
        print(f"  {'path':<28}{'seconds':>9}{'peak MB':>9}{'÷ previous':>12}{'÷ original s':>14}{'÷ original MB':>15}")
        previous = None
        for path in workload.paths:
            command = [sys.executable, "-m", "benchmarks.versus_original", "--device", args.device]
            command += ["--repeats", str(args.repeats), "--measure", name, path]
            figures = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            previous = previous or figures
            print(
                f"  {path:<28}{figures['seconds']:>9.2f}{figures['memory_mb']:>9.0f}"
                f"{ratio(figures['seconds'], previous['seconds']):>12}"
                f"{ratio(figures['seconds'], workload.original_seconds):>14}"
                f"{ratio(figures['memory_mb'], workload.original_memory_mb):>15}"
            )
        original_memory = f", {workload.original_memory_mb:.0f} MB" if workload.original_memory_mb else ""
        print(f"  {'original (DF v1.5)':<28}{workload.original_seconds:>9.2f}{original_memory}")


if __name__ == "__main__":
    main()
