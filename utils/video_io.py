"""Turning frame tensors into files a person can watch (MP4 via PyAV) and wandb can show."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor


def to_uint8_frames(video: Tensor) -> np.ndarray:
    """(T, C, H, W) in [-1, 1] → (T, H, W, 3) uint8."""
    frames = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.permute(0, 2, 3, 1).cpu().numpy()


def side_by_side(prediction: Tensor, ground_truth: Tensor, min_height: int = 128) -> np.ndarray:
    """Prediction | ground truth as one uint8 clip, upscaled (nearest) so small frames stay visible."""
    frames = np.concatenate([to_uint8_frames(prediction), to_uint8_frames(ground_truth)], axis=2)
    scale = max(1, -(-min_height // frames.shape[1]))
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def write_video(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Encode (T, H, W, 3) uint8 frames as an H.264 MP4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=fps, out_pixel_format="yuv420p")
    return path
