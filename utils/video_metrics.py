"""Frame-quality metrics of generated video against ground truth (both (B, T, C, H, W) in [0, 1])."""

import torch
from einops import rearrange
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

MIN_MSE = 1e-10  # caps PSNR at 100 dB, so a perfectly predicted frame does not make the average infinite


def frame_metrics(prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
    """MSE, PSNR (dB, per frame, then averaged) and SSIM averaged over every generated frame."""
    mse = frame_mse(prediction, target)
    frames_pred = rearrange(prediction.float(), "b t c h w -> (b t) c h w")
    frames_true = rearrange(target.float(), "b t c h w -> (b t) c h w")
    ssim = structural_similarity_index_measure(frames_pred, frames_true, data_range=1.0)
    return {"mse": mse.mean(), "psnr": psnr_db(mse).mean(), "ssim": torch.as_tensor(ssim)}


def per_frame_errors(prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Summed over the batch, per frame index: MSE and PSNR (dB), each (T,) — divide by the batch to average.

    Plotted against the frame index these show how a long rollout drifts from the ground truth over time.
    """
    mse = frame_mse(prediction, target)
    return {"mse": mse.sum(0), "psnr": psnr_db(mse).sum(0)}


def frame_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of every frame, (B, T)."""
    return (prediction.float() - target.float()).pow(2).flatten(2).mean(-1)


def psnr_db(mse: Tensor) -> Tensor:
    """PSNR of images in [0, 1] from their MSE."""
    return -10 * torch.log10(mse.clamp(min=MIN_MSE))
