"""Autoregressive sampling with the key/value cache vs recomputing every frame, on identical inputs and weights.

    python -m benchmarks.sample_speed                      # DMLab (64², 2 → 16 frames) and the demo config
    python -m benchmarks.sample_speed --configs demo --steps 20 --length 24

Prints, per configuration (and in bf16 too where bf16 is native: CUDA, CPUs with AVX-512 BF16 or AMX): frames
per second and frames run through the network for both paths, their ratios, and the largest difference between
the two samples.
"""

import argparse
import time

import torch

from benchmarks.common import CONFIGS, autocast, bf16_is_native, parameter_count, pick_device, synchronize, video_model

CACHEABLE = ["algorithm.diffusion.architecture.frame_wise_norm=true", "algorithm.kv_cache=true"]


def timed_rollout(model, kv_cache: bool, context, cond, length: int, device, dtype) -> tuple[torch.Tensor, float, int]:
    """(frames, seconds, network frame-passes) of one rollout from `context` to `length` frames."""
    sampler = model.sampler
    sampler.kv_cache = kv_cache
    synchronize(device)
    start = time.perf_counter()
    with autocast(device, dtype == torch.bfloat16):
        video = sampler.rollout(context, length, cond, torch.Generator(device).manual_seed(0))
    synchronize(device)
    return video.float(), time.perf_counter() - start, sampler.frame_passes


def compare(config: str, steps: int, length: int | None, batch: int, device: torch.device, dtype) -> None:
    # the cache is exact for the strictly causal network only (frame-wise GroupNorm); both paths run that network
    overrides = [f"algorithm.diffusion.sampling_timesteps={steps}", *CACHEABLE]
    model = video_model(config, overrides).to(device)
    c = model.config
    length = length or c.n_frames
    n_context = max(c.context_frames, 1)
    generator = torch.Generator().manual_seed(1)
    context = (torch.rand(batch, n_context, *c.x_shape, generator=generator) * 2 - 1).to(device)
    cond = (
        torch.randn(batch, length, c.external_cond_dim, generator=generator).to(device) if c.external_cond_dim else None
    )
    timed_rollout(model, True, context, cond, n_context + 1, device, dtype)  # warm-up
    recompute, t_recompute, passes_recompute = timed_rollout(model, False, context, cond, length, device, dtype)
    cached, t_cached, passes_cached = timed_rollout(model, True, context, cond, length, device, dtype)
    new_frames = batch * (length - n_context)
    print(
        f"\n[{config}] {device.type} {str(dtype).removeprefix('torch.')}, {parameter_count(model) / 1e6:.2f} M params, "
        f"{c.x_shape[1]}², window {c.n_frames}, {n_context} → {length} frames, chunk {c.chunk_size}, "
        f"{c.scheduling_matrix}, {steps} sampling steps, batch {batch}"
    )
    print(f"  {'path':<10}{'seconds':>10}{'frames/s':>10}{'frame-passes':>14}")
    for name, seconds, passes in (("recompute", t_recompute, passes_recompute), ("kv_cache", t_cached, passes_cached)):
        print(f"  {name:<10}{seconds:>10.2f}{new_frames / seconds:>10.2f}{passes:>14d}")
    print(
        f"  speed-up {t_recompute / t_cached:.1f}x, frame-passes {passes_recompute / passes_cached:.1f}x fewer, "
        f"max |cached - recompute| = {(cached - recompute).abs().max().item():.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["dmlab", "demo"], choices=sorted(CONFIGS))
    parser.add_argument("--steps", type=int, default=10, help="DDIM sampling steps per frame")
    parser.add_argument("--length", type=int, default=None, help="rollout length in frames (default: the window)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.set_grad_enabled(False)
    dtypes = [torch.float32, torch.bfloat16] if bf16_is_native(device) else [torch.float32]
    for config in args.configs:
        for dtype in dtypes:
            compare(config, args.steps, args.length, args.batch, device, dtype)


if __name__ == "__main__":
    main()
