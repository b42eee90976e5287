"""This project's cost beside DF v1.5's on the workloads the speed targets name, each in its own process.

    python -m benchmarks.versus_original                        # every workload (about 15 min on 2 CPU cores)
    python -m benchmarks.versus_original --only training_step   # one of them
    python -m benchmarks.versus_original --device cuda

Every workload runs in a fresh process (peak memory is per process on the CPU), first on the path a plain config
takes (the first: what the original computes, recompute every frame, keep every activation, fp32), then on the
paths this project offers for it (key/value cache, activation checkpointing, bf16 autocast where bf16 is native),
and prints the seconds, the peak memory, the ratios to the first path and to DF v1.5's figure in the same
precision, and the largest difference of each path's output from the first path's. DF v1.5's figures were
measured with its own code (commit 475e0bc, its networks and sampling loops, random weights, each workload in its
own process) on ORIGINAL_MACHINE; on another machine only the ratios between paths carry over.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import torch
from lightning.pytorch import LightningModule

from benchmarks.common import autocast, bf16_is_native, median_seconds, peak_memory_mb, pick_device, video_model
from benchmarks.plan_speed import load_planner, one_plan
from benchmarks.sample_speed import timed_rollout


@dataclass(frozen=True)
class Variant:
    """One path through a workload: config overrides, and whether it runs under bf16 autocast."""

    overrides: tuple[str, ...] = ()
    bf16: bool = False


@dataclass(frozen=True)
class Cost:
    """What one run of a workload took."""

    seconds: float
    memory_mb: float


@dataclass(frozen=True)
class Workload:
    description: str
    original: Cost  # DF v1.5's own code in fp32 on ORIGINAL_MACHINE, in its own process
    original_bf16: Cost  # the same under bf16 autocast (what its 16-mixed default runs as on a CPU)
    paths: dict[str, Variant]  # the first is the plain config's (fp32)


ORIGINAL_MACHINE = "2 cores of an AMD EPYC (Zen 4: AVX-512 BF16), torch 2.13.0"
CACHEABLE = ("algorithm.diffusion.architecture.frame_wise_norm=true",)
CACHED = (*CACHEABLE, "algorithm.kv_cache=true")
CHECKPOINTING = ("algorithm.diffusion.architecture.use_checkpointing=[true,true,false,false]",)
FULL_SEQUENCE = ("algorithm.scheduling_matrix=full_sequence", "algorithm.chunk_size=-1")
# the seed README's maze2d-medium command: positions only
README_MEDIUM = (
    "dataset.action_mean=[]",
    "dataset.action_std=[]",
    "dataset.observation_mean=[3.5092521,3.4765592]",
    "dataset.observation_std=[1.3371079,1.52102]",
)
WORKLOADS = {
    "forward": Workload(
        "DMLab forward pass, 16 frames, batch 1",
        Cost(2.39, 924),
        Cost(1.76, 944),
        {"network": Variant(), "network, bf16": Variant(bf16=True)},
    ),
    "rollout": Workload(
        "DMLab autoregressive rollout 2 → 16 frames, 10 steps, chunk 1, batch 1",
        Cost(153.0, 2006),
        Cost(113.2, 1882),
        {
            "recompute": Variant((*CACHEABLE, "algorithm.kv_cache=false")),
            "kv_cache": Variant(CACHED),
            "kv_cache, bf16": Variant(CACHED, bf16=True),
        },
    ),
    "full_sequence": Workload(
        "DMLab full_sequence sampling, chunk -1, 10 steps",
        Cost(24.1, 1011),
        Cost(15.9, 930),
        {"recompute": Variant(FULL_SEQUENCE), "recompute, bf16": Variant(FULL_SEQUENCE, bf16=True)},
    ),
    "training_step": Workload(
        "DMLab training step, batch 2",
        Cost(15.2, 5621),
        Cost(14.2, 3412),
        {
            "every activation kept": Variant(),
            "checkpointing 64² and 32²": Variant(CHECKPOINTING),
            "bf16-mixed": Variant(bf16=True),
            "bf16-mixed, checkpointing": Variant(CHECKPOINTING, bf16=True),
        },
    ),
    "planner_training_step": Workload(
        "maze2d-medium planner training step, batch 1024 (the seed README's command: positions only)",
        Cost(12.2, 6475),
        Cost(10.85, 4162),
        {"default": Variant(README_MEDIUM), "bf16-mixed": Variant(README_MEDIUM, bf16=True)},
    ),
    "guided_plan": Workload(
        "one maze plan, horizon 600, 50 steps, guided through the network",
        Cost(2.47, 493),
        Cost(3.0, 477),
        {"default": Variant(README_MEDIUM), "bf16": Variant(README_MEDIUM, bf16=True)},
    ),
    "unguided_plan": Workload(
        "one maze plan, horizon 600, 50 steps, unguided",
        Cost(1.18, 1036),
        Cost(0.92, 778),
        {"default": Variant(README_MEDIUM), "bf16": Variant(README_MEDIUM, bf16=True)},
    ),
}


def sampling(variant: Variant, device: torch.device) -> tuple[float, torch.Tensor]:
    """Seconds of one rollout after a short warm-up (one run: a rollout is long enough to time alone), and it."""
    model = video_model("dmlab", ["algorithm.diffusion.sampling_timesteps=10", *variant.overrides]).to(device)
    context = torch.rand(1, 2, *model.config.x_shape, generator=torch.Generator().manual_seed(1)).to(device) * 2 - 1
    dtype = torch.bfloat16 if variant.bf16 else torch.float32
    with torch.no_grad():
        timed_rollout(model, model.config.kv_cache, context, None, 3, device, dtype)  # warm-up
        video, seconds, _ = timed_rollout(model, model.config.kv_cache, context, None, 16, device, dtype)
    return seconds, video


def video_training(variant: Variant, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """The DMLab model's training step on a random batch of two clips."""
    model = video_model("dmlab", list(variant.overrides)).to(device)
    c = model.config
    batch = {"videos": torch.rand(2, c.n_frames, *c.x_shape, device=device) * 2 - 1, "actions": None}
    return training(model, batch, variant.bf16, device, repeats)


def planner_training(variant: Variant, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """The planner's training step on 1024 random windows of an episode's length."""
    model, dataset = load_planner(list(variant.overrides), None, device)
    steps = dataset.episode_len + 1
    batch = {
        "observations": torch.randn(1024, steps, 4, device=device) + 3,
        "actions": torch.randn(1024, steps, 2, device=device),
    }
    return training(model, batch, variant.bf16, device, repeats)


def training(
    model: LightningModule, batch: dict, bf16: bool, device: torch.device, repeats: int
) -> tuple[float, torch.Tensor]:
    """Median seconds of an AdamW step on the module's own training loss for `batch`, and the first step's loss."""
    model.train()
    model.log = lambda *args, **kwargs: None  # no trainer attached: logging is not what is measured
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses = []

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # the same noise levels and noise on every path
        with autocast(device, bf16):  # as Lightning's bf16-mixed: the forward pass only
            loss = model.training_step(batch, 0)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().float())

    return median_seconds(step, device, repeats), losses[0]


def planning(name: str, variant: Variant, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """One plan of the planner's horizon, guided (`guided_plan`) or not, and the plan."""
    model, _ = load_planner(list(variant.overrides), None, device)
    scale = (model.config.guidance_scale or 2.0) if name == "guided_plan" else 0.0
    plans = []

    def plan() -> None:
        with autocast(device, variant.bf16):
            plans.append(one_plan(model, scale, False, 1, device).float())

    return median_seconds(plan, device, repeats), plans[0]


def measure(name: str, variant: Variant, device: torch.device, repeats: int) -> tuple[dict[str, float], torch.Tensor]:
    """Seconds and peak memory of one workload on one path, in this process, and what it computed."""
    torch.manual_seed(0)
    if name == "forward":
        model = video_model("dmlab", list(variant.overrides)).to(device)
        x = torch.rand(1, 16, *model.config.x_shape, device=device) * 2 - 1
        levels = torch.randint(0, 1000, (1, 16), device=device)
        outputs = []
        with torch.no_grad(), autocast(device, variant.bf16):
            seconds = median_seconds(lambda: outputs.append(model.model(x, levels)), device, repeats)
        sample = outputs[0].float()
    elif name in ("rollout", "full_sequence"):
        seconds, sample = sampling(variant, device)
    elif name == "training_step":
        seconds, sample = video_training(variant, device, repeats)
    elif name == "planner_training_step":
        seconds, sample = planner_training(variant, device, repeats)
    else:
        seconds, sample = planning(name, variant, device, repeats)
    return {"seconds": seconds, "memory_mb": peak_memory_mb(device)}, sample.cpu()


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--measure", nargs=3, metavar=("WORKLOAD", "PATH", "SAMPLE_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.measure:
        workload, path, sample_file = args.measure
        figures, sample = measure(workload, WORKLOADS[workload].paths[path], device, args.repeats)
        torch.save(sample, sample_file)
        print(json.dumps(figures))
        return
    bf16 = bf16_is_native(device)
    print(f"{device.type}; bf16 paths {'run' if bf16 else 'skipped: bf16 is emulated here'}")
    print(f"original = DF v1.5's own code on {ORIGINAL_MACHINE}; ÷ original compares within one precision")
    print("max diff: largest difference from the first path's output (the first loss, for training steps)")
    for name in args.only:
        run_workload(name, WORKLOADS[name], device, args.repeats, bf16)


def run_workload(name: str, workload: Workload, device: torch.device, repeats: int, bf16: bool) -> None:
    """Every path of one workload, each in a fresh process; ratios and differences are to the first path."""
    print(f"\n{name}: {workload.description}")
    print(
        f"  {'path':<28}{'seconds':>9}{'peak MB':>9}{'÷ first':>9}{'÷ original s':>14}{'÷ original MB':>15}"
        f"{'max diff':>10}"
    )
    first, first_sample = None, None
    with tempfile.TemporaryDirectory() as scratch:
        for path, variant in workload.paths.items():
            if variant.bf16 and not bf16:
                continue
            sample_file = f"{scratch}/sample.pt"
            command = [sys.executable, "-m", "benchmarks.versus_original", "--device", str(device)]
            command += ["--repeats", str(repeats), "--measure", name, path, sample_file]
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"{name} / {path} failed:\n{run.stderr}")
            figures, sample = json.loads(run.stdout), torch.load(sample_file)
            first = first or figures
            difference = "-" if first_sample is None else f"{(sample - first_sample).abs().max().item():.1e}"
            first_sample = sample if first_sample is None else first_sample
            original = workload.original_bf16 if variant.bf16 else workload.original
            print(
                f"  {path:<28}{figures['seconds']:>9.2f}{figures['memory_mb']:>9.0f}"
                f"{ratio(figures['seconds'], first['seconds']):>9}{ratio(figures['seconds'], original.seconds):>14}"
                f"{ratio(figures['memory_mb'], original.memory_mb):>15}{difference:>10}"
            )
    for precision, cost in (("fp32", workload.original), ("bf16", workload.original_bf16)):
        print(f"  {'original (DF v1.5), ' + precision:<28}{cost.seconds:>9.2f}{cost.memory_mb:>9.0f}")


if __name__ == "__main__":
    main()
