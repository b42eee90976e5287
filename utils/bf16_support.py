"""Whether bf16 is native where work runs: CPUs without AVX-512 BF16 or AMX emulate it, many times slower."""

import torch
from lightning.pytorch.accelerators import Accelerator, CPUAccelerator


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 matmuls and convolutions in hardware (AVX-512 BF16 or AMX)."""
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def emulates_bf16(accelerator: Accelerator) -> bool:
    """True on a CPU whose bf16 matmuls and convolutions are emulated (measured here: about 25x slower than fp32)."""
    return isinstance(accelerator, CPUAccelerator) and not cpu_has_native_bf16()
