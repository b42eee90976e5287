"""Which layout a checkpoint's weights have, and the conversion of the original DF v1.5 code's checkpoints.

This project's checkpoints record `LAYOUT`, the version of its networks' state-dict layout; older ones (before the
networks became DF v1.5's) are refused with one line. Checkpoints of the original (buoyancy99/diffusion-forcing)
are recognised by their keys and converted on `load=`: they hold `diffusion_model.model[.module].<network>`
weights, the diffusion schedule as buffers (`diffusion_model.betas`, `alphas_cumprod`, …), the data
normalisation (`data_mean`, `data_std`) and the rotary frequencies as parameters. Our networks are the same
networks with their own module names and 2D convolutions where the original has (1, k, k) 3D ones, so every
weight has exactly one counterpart: `original_key` gives it for each of our keys, and the conversion checks that
nothing is left over. Fixed tensors (schedule, rotary frequencies) are compared, not loaded, so a checkpoint
trained under another configuration is refused with the override that fits it.
"""

import re
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from utils.typed_config import ConfigError

from .models.diffusion import BETA_SCHEDULES, make_betas

LAYOUT_KEY = "df_layout"
LAYOUT = 2  # this project's state-dict layout: 2 = DF v1.5's networks; 1 (unmarked) = the earlier own designs

# Our U-Net key → the original's, applied in order: first the block a key lives in, then the layer inside it.
_UNET_BLOCKS = [
    (r"^noise_embedding\.", "noise_level_pos_embedding.1."),
    (r"^init_temporal\.", "init_temporal_attn.wrapper.module.attn_block."),
    (r"^downs\.(\d+)\.res1\.", r"down_blocks.\1.0.0."),
    (r"^downs\.(\d+)\.res2\.", r"down_blocks.\1.0.1."),
    (r"^downs\.(\d+)\.spatial\.", r"down_blocks.\1.0.2.wrapper.module."),
    (r"^downs\.(\d+)\.temporal\.", r"down_blocks.\1.0.3.wrapper.module.attn_block."),
    (r"^downsamples\.(\d+)\.", r"down_blocks.\1.1.conv."),
    (r"^mid\.res1\.", "mid_block.0."),
    (r"^mid\.spatial\.", "mid_block.1.wrapper.module."),
    (r"^mid\.temporal\.", "mid_block.2.wrapper.module.attn_block."),
    (r"^mid\.res2\.", "mid_block.3."),
    (r"^ups\.(\d+)\.res1\.", r"up_blocks.\1.0."),
    (r"^ups\.(\d+)\.res2\.", r"up_blocks.\1.1."),
    (r"^ups\.(\d+)\.spatial\.", r"up_blocks.\1.2.wrapper.module."),
    (r"^ups\.(\d+)\.temporal\.", r"up_blocks.\1.3.wrapper.module.attn_block."),
    (r"^upsamples\.(\d+)\.conv\.", r"up_blocks.\1.4.conv."),
    (r"^out_res\.", "out.0."),
    (r"^out_conv\.", "out.1."),
]
_UNET_LAYERS = [
    (r"\.norm1\.(weight|bias)$", r".in_layers.0.\1"),
    (r"\.conv1\.(weight|bias)$", r".in_layers.2.\1"),
    (r"\.norm2\.(weight|bias)$", r".out_layers.0.\1"),
    (r"\.conv2\.(weight|bias)$", r".out_layers.2.\1"),
    (r"\.emb\.1\.(weight|bias)$", r".emb_layers.1.\1"),
    (r"\.skip\.(weight|bias)$", r".skip_conv.\1"),
    (r"\.(to_qkv|to_out)\.(weight|bias)$", r".attn.\1.\2"),
]


def original_unet_key(key: str) -> str:
    """The original's name (under `diffusion_model.model.module.`) of our U-Net weight `key`."""
    for pattern, replacement in _UNET_BLOCKS:
        key, found = re.subn(pattern, replacement, key)
        if found:
            break
    for pattern, replacement in _UNET_LAYERS:
        key = re.sub(pattern, replacement, key)
    return key


def is_original_checkpoint(state: dict[str, Tensor]) -> bool:
    """Whether a Lightning `state_dict` was written by DF v1.5 (its networks live under `diffusion_model.`)."""
    return any(key.startswith("diffusion_model.model.") for key in state)


def checkpoint_layout(key: str, checkpoint: dict, path: object) -> Literal["original", "current"]:
    """ "original" (DF v1.5) or "current"; a `ConfigError` on `key` for this project's older or newer layouts."""
    if is_original_checkpoint(checkpoint["state_dict"]):
        return "original"
    layout = checkpoint.get(LAYOUT_KEY, 1)
    if layout == LAYOUT:
        return "current"
    age = "an older" if layout < LAYOUT else "a newer"
    raise ConfigError(
        key,
        f"{path} has {age} layout of this project's networks (version {layout}, this code "
        f"reads {LAYOUT}): load it with the version that wrote it, or retrain",
    )


def network_weights(
    state: dict[str, Tensor], ours: dict[str, Tensor], prefix: str, original_key: Callable[[str], str]
) -> dict[str, Tensor]:
    """Our network's state dict from the original's `state`: each of our keys from its counterpart under `prefix`.

    Raises a `ConfigError` on `load` for a missing counterpart, a shape that differs beyond the 3D→2D kernel, or
    an original weight that nothing here takes (a layer this configuration does not build).
    """
    converted, used = {}, set()
    for key, tensor in ours.items():
        source = prefix + original_key(key)
        if source not in state:
            raise ConfigError("load", f"the DF v1.5 checkpoint has no {source} for this configuration's {key}")
        value = state[source]
        if value.dim() == 5 and tensor.dim() == 4:  # (out, in, 1, k, k) kernels of the original's Conv3d
            value = value.squeeze(2)
        if value.shape != tensor.shape:
            raise ConfigError(
                "load",
                f"{source} has shape {list(value.shape)} in the checkpoint but {list(tensor.shape)} in this "
                f"configuration: use the architecture keys the checkpoint was trained with",
            )
        converted[key] = value
        used.add(source)
    extra = sorted(k for k in state if k.startswith(prefix) and k not in used and not k.endswith(".freqs"))
    if extra:
        raise ConfigError(
            "load",
            f"the DF v1.5 checkpoint has {extra[0]} (and {len(extra) - 1} more) that this "
            "configuration does not build: use the architecture keys it was trained with",
        )
    return converted


def check_rotary_frequencies(state: dict[str, Tensor], prefix: str, inv_freq: Tensor) -> None:
    """The original stores rotary frequencies as (frozen) parameters; they must be the ones we compute."""
    for key, value in state.items():
        if not (key.startswith(prefix) and key.endswith(".freqs")):
            continue
        if value.shape != inv_freq.shape:
            raise ConfigError(
                "load",
                f"{key} has {len(value)} rotary frequencies, this configuration {len(inv_freq)}: set "
                f"algorithm.diffusion.architecture.attn_dim_head={2 * len(value)}",
            )
        if not torch.allclose(value, inv_freq, rtol=1e-5):
            raise ConfigError("load", f"{key} holds rotary frequencies other than 10000^(-2i/attn_dim_head)")


def check_schedule(state: dict[str, Tensor], beta_schedule: str, timesteps: int) -> None:
    """The checkpoint's ᾱ must be this configuration's; otherwise name the `beta_schedule` that matches it."""
    stored = state.get("diffusion_model.alphas_cumprod")
    if stored is None:
        raise ConfigError("load", "the DF v1.5 checkpoint has no diffusion_model.alphas_cumprod")

    def matches(schedule: str) -> bool:
        expected = torch.cumprod(1 - make_betas(schedule, len(stored)), 0).float()
        return torch.allclose(stored, expected, atol=1e-6)

    if len(stored) == timesteps and matches(beta_schedule):
        return
    fits = [s for s in BETA_SCHEDULES if matches(s)]
    overrides = [f"algorithm.diffusion.timesteps={len(stored)}"] if len(stored) != timesteps else []
    overrides.append(
        f"algorithm.diffusion.beta_schedule={fits[0]}" if fits else "the beta schedule it was trained with"
    )
    raise ConfigError("load", f"the checkpoint's noise schedule is not this configuration's: set {' '.join(overrides)}")
