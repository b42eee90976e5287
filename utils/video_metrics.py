"""Frame-quality metrics of generated video against ground truth (both (B, T, C, H, W) in [0, 1])."""

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def frame_metrics(prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
    """MSE, PSNR (dB) and SSIM averaged over every generated frame."""
    prediction, target = prediction.float(), target.float()
    frames_pred = rearrange(prediction, "b t c h w -> (b t) c h w")
    frames_true = rearrange(target, "b t c h w -> (b t) c h w")
    mse = F.mse_loss(prediction, target)
    psnr = peak_signal_noise_ratio(
        frames_pred, frames_true, data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)
    )
    ssim = structural_similarity_index_measure(frames_pred, frames_true, data_range=1.0)
    return {"mse": mse, "psnr": torch.as_tensor(psnr), "ssim": torch.as_tensor(ssim)}
