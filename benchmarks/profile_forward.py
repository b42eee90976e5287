"""Where one network pass spends its time: a 16-frame forward pass and one training step at the DMLab size.

    python -m benchmarks.profile_forward [--config dmlab] [--batch 2] [--top 12] [--device auto] [--bf16]

Prints the wall time (median of a few repeats), peak memory, and the profiler's top operators by self time.
"""

import argparse
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import (
    CONFIGS,
    autocast,
    median_seconds,
    parameter_count,
    peak_memory_mb,
    pick_device,
    synchronize,
    video_model,
)


def measure(name: str, work: Callable[[], None], device: torch.device, repeats: int, top: int) -> None:
    seconds = median_seconds(work, device, repeats)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        work()
        synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    memory = peak_memory_mb(device)
    print(f"\n== {name}: {seconds:.3f} s (median of {repeats}), peak memory {memory:.0f} MB")
    print(prof.key_averages().table(sort_by=sort, row_limit=top, max_name_column_width=40))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="dmlab", choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=2, help="batch of the training step (the forward pass uses 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bf16", action="store_true", help="under bf16 autocast, as bf16-mixed runs")
    args = parser.parse_args()
    device = pick_device(args.device)
    model = video_model(args.config, []).to(device)
    c = model.config
    size = f"{parameter_count(model) / 1e6:.2f} M params, {c.n_frames} frames at {c.x_shape[1]}²"
    print(f"[{args.config}] {device.type}{', bf16 autocast' if args.bf16 else ''}, {size}")

    def clip(batch: int) -> dict[str, torch.Tensor]:
        videos = torch.rand(batch, c.n_frames, *c.x_shape, device=device) * 2 - 1
        return {"videos": videos, "actions": torch.randn(batch, c.n_frames, c.external_cond_dim, device=device)}

    actions = (lambda x: x["actions"]) if c.external_cond_dim else (lambda x: None)

    x = clip(1)
    levels = torch.randint(0, 1000, (1, c.n_frames), device=device)

    def forward() -> None:
        with torch.no_grad(), autocast(device, args.bf16):
            model.model(x["videos"], levels, actions(x))

    batch = clip(args.batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def training_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, args.bf16):
            loss = model.training_step(batch, 0)
        loss.backward()
        optimizer.step()

    model.log = lambda *a, **k: None  # no trainer attached: logging is not what is measured
    measure(f"forward, 1 × {c.n_frames} frames", forward, device, args.repeats, args.top)
    model.train()
    measure(f"training step, batch {args.batch}", training_step, device, args.repeats, args.top)


if __name__ == "__main__":
    main()
