"""Shared set-up for the benchmarks: the real composed config, at the sizes the benchmarks name."""

import resource
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torch import nn

from algorithms.diffusion_forcing.df_video import DFVideoConfig, DiffusionForcingVideo
from utils.bf16_support import cpu_has_native_bf16
from utils.typed_config import build

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configurations")

# The original's DMLab recipe (seed README) on 64² clips of 16 frames with 2 context frames, no actions: exactly
# DF v1.5's DMLab network (18.65 M parameters, its clip-wide GroupNorm), so its timings compare with the original's.
DMLAB = [
    "dataset=video_dmlab",
    "dataset.resolution=64",
    "dataset.n_frames=16",
    "dataset.context_length=2",
    "dataset.external_cond_dim=0",
    "algorithm.weight_decay=1e-3",
    "algorithm.diffusion.architecture.network_size=48",
    "algorithm.diffusion.architecture.attn_heads=4",
    "algorithm.diffusion.architecture.attn_dim_head=32",
    "algorithm.diffusion.architecture.dim_mults=[1,2,4,8]",
    "algorithm.diffusion.architecture.attn_resolutions=[8,16,32,64]",
    "algorithm.diffusion.beta_schedule=cosine",
]
CONFIGS = {"dmlab": DMLAB, "demo": []}


def video_model(config: str, overrides: list[str]) -> DiffusionForcingVideo:
    """The DF video model of a named configuration; zero-initialised layers get random weights so outputs vary."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose(config_name="config", overrides=[*CONFIGS[config], *overrides])
    model = DiffusionForcingVideo(build(DFVideoConfig, cfg.algorithm, "algorithm"))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=0.02)
    return model.eval()


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 runs in hardware here (elsewhere it is emulated, many times slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def autocast(device: torch.device, bf16: bool) -> AbstractContextManager[None]:
    """bf16 autocast, as Lightning's bf16-mixed runs the forward pass, or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(work: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of `repeats` runs of `work` after one warm-up run (CUDA's peak memory counts from there)."""
    work()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        work()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
