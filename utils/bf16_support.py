"""Whether bf16 is fast where work runs: CPUs without oneDNN's bf16 kernels (AVX2 only) emulate it, far slower."""

import torch
from lightning.pytorch.accelerators import Accelerator, CPUAccelerator


def cpu_has_native_bf16() -> bool:
    """True where oneDNN has bf16 kernels for this CPU (AVX-512 and newer; in hardware with AVX-512 BF16 or AMX)."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def emulates_bf16(accelerator: Accelerator) -> bool:
    """True on a CPU whose bf16 matmuls and convolutions are emulated (measured here: about 25x slower than fp32)."""
    return isinstance(accelerator, CPUAccelerator) and not cpu_has_native_bf16()
