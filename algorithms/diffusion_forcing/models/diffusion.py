"""Diffusion math for Diffusion Forcing, kept outside the LightningModule.

Symbols (Chen et al. 2024, arXiv 2407.01392; Ho et al. 2020; Song et al. 2021):
    k        per-token noise level, an integer diffusion timestep in [0, timesteps); -1 means clean
    ᾱ_k      `alphas_cumprod[k]`, so x_k = sqrt(ᾱ_k)·x_0 + sqrt(1-ᾱ_k)·ε                      (DDPM eq. 4)
    SNR_k    ᾱ_k / (1-ᾱ_k)
Every token of a sequence carries its own k; all tensors of levels are shaped (B, T) and broadcast over the
token's remaining axes.
"""

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.typed_config import require

BetaSchedule = Literal["linear", "cosine", "sigmoid"]
BETA_SCHEDULES: tuple[str, ...] = get_args(BetaSchedule)
Objective = Literal["pred_noise", "pred_x0", "pred_v"]


@dataclass(frozen=True)
class DiffusionConfig:
    """The original's `algorithm.diffusion.*` keys (minus `architecture`, which each algorithm adds)."""

    timesteps: int = 1000
    sampling_timesteps: int = 100
    beta_schedule: BetaSchedule = "sigmoid"
    objective: Objective = "pred_v"
    use_snr: bool = False
    use_fused_snr: bool = True
    snr_clip: float = 5.0
    cum_snr_decay: float = 0.96
    clip_noise: float = 6.0
    ddim_sampling_eta: float = 0.0
    stabilization_level: int = 15
    clip_denoised: bool = False

    def __post_init__(self) -> None:
        require(self.timesteps >= 2, "timesteps", f"must be >= 2, got {self.timesteps}")
        require(
            1 <= self.sampling_timesteps <= self.timesteps,
            "sampling_timesteps",
            f"must be in [1, timesteps={self.timesteps}], got {self.sampling_timesteps}",
        )
        require(self.snr_clip > 0, "snr_clip", f"must be > 0, got {self.snr_clip}")
        require(0 <= self.cum_snr_decay <= 1, "cum_snr_decay", f"must be in [0, 1], got {self.cum_snr_decay}")
        require(self.clip_noise > 0, "clip_noise", f"must be > 0, got {self.clip_noise}")
        require(self.ddim_sampling_eta >= 0, "ddim_sampling_eta", f"must be >= 0, got {self.ddim_sampling_eta}")
        require(
            1 <= self.stabilization_level <= self.timesteps,
            "stabilization_level",
            f"must be in [1, timesteps={self.timesteps}] (finished frames are shown at timestep level - 1), "
            f"got {self.stabilization_level}",
        )


def make_betas(schedule: BetaSchedule, timesteps: int) -> Tensor:
    """β_1..β_K in float64: linear (DDPM), cosine (Nichol & Dhariwal 2021), sigmoid (Jabri et al. 2022)."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    if schedule == "linear":
        scale = 1000 / timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    if schedule == "cosine":
        offset = 0.008
        alphas_cumprod = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    elif schedule == "sigmoid":
        start, end, tau = -3.0, 3.0, 1.0
        low, high = torch.sigmoid(torch.tensor(start / tau)), torch.sigmoid(torch.tensor(end / tau))
        alphas_cumprod = (high - torch.sigmoid((steps * (end - start) + start) / tau)) / (high - low)
    else:
        raise ValueError(f"unknown beta schedule {schedule!r}")
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    return (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(0, 0.999)


def sampling_noise_levels(timesteps: int, sampling_timesteps: int) -> Tensor:
    """Diffusion timestep of each sampling level 0..S (0 = clean → -1, S = pure noise → timesteps-1)."""
    return torch.linspace(-1, timesteps - 1, sampling_timesteps + 1).long()


class Diffusion(nn.Module):
    """Noise schedule, training targets and loss weights, and the DDIM update, all per token.

    `frames_per_token` (frame_stack · frame_skip) is how many dataset frames one token spans: `cum_snr_decay` is
    a decay per dataset frame, so fused SNR decays by its power per token (DF v1.5).
    """

    def __init__(self, config: DiffusionConfig, frames_per_token: int = 1) -> None:
        super().__init__()
        self.config = config
        self.cum_snr_decay = config.cum_snr_decay**frames_per_token
        alphas_cumprod = torch.cumprod(1 - make_betas(config.beta_schedule, config.timesteps), dim=0)
        # index 0 holds the clean level k = -1 (ᾱ = 1), so lookups use k + 1
        padded = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod])
        self.register_buffer("alphas_cumprod", padded.float(), persistent=False)
        self.register_buffer("snr", (alphas_cumprod / (1 - alphas_cumprod)).float(), persistent=False)
        self.register_buffer(
            "level_of_step", sampling_noise_levels(config.timesteps, config.sampling_timesteps), persistent=False
        )

    def alpha_bar(self, k: Tensor, like: Tensor) -> Tensor:
        """ᾱ_k for levels k (B, T), shaped to broadcast against `like` (B, T, ...)."""
        values = self.alphas_cumprod[k + 1]
        return values.reshape(*k.shape, *([1] * (like.ndim - k.ndim)))

    def q_sample(self, x0: Tensor, k: Tensor, noise: Tensor) -> Tensor:
        """x_k = sqrt(ᾱ_k)·x_0 + sqrt(1-ᾱ_k)·ε."""
        a = self.alpha_bar(k, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def stabilize(self, x: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Present clean tokens (k = -1) at timestep k_s = `stabilization_level` − 1 by rescaling, without noise.

        DF §3.4; the label and the √ᾱ_{k_s} scaling are DF v1.5's, so its configs mean the same here.
        """
        clean = k < 0
        k_s = torch.full_like(k, self.config.stabilization_level - 1)
        rescaled = self.q_sample(x, k_s, torch.zeros_like(x))
        mask = clean.reshape(*clean.shape, *([1] * (x.ndim - clean.ndim)))
        return torch.where(mask, rescaled, x), torch.where(clean, k_s, k)

    def clipped_noise(self, shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Gaussian noise clipped to ±`clip_noise`, for training targets and sampling alike (DF v1.5)."""
        noise = torch.randn(shape, device=like.device, dtype=like.dtype, generator=generator)
        return noise.clamp(-self.config.clip_noise, self.config.clip_noise)

    def target(self, x0: Tensor, noise: Tensor, k: Tensor) -> Tensor:
        """What the network regresses: ε, x_0 or v = sqrt(ᾱ)·ε − sqrt(1−ᾱ)·x_0 (Salimans & Ho 2022)."""
        objective = self.config.objective
        if objective == "pred_noise":
            return noise
        if objective == "pred_x0":
            return x0
        a = self.alpha_bar(k, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def predict_x0_and_noise(self, x_k: Tensor, k: Tensor, model_output: Tensor) -> tuple[Tensor, Tensor]:
        """Invert the objective: (x̂_0, ε̂) from the network output at levels k (a predicted ε̂ clipped to ±clip_noise)."""
        a = self.alpha_bar(k, x_k)
        objective = self.config.objective
        if objective == "pred_noise":
            noise = model_output.clamp(-self.config.clip_noise, self.config.clip_noise)
            x0 = (x_k - (1 - a).sqrt() * noise) / a.sqrt()
        elif objective == "pred_x0":
            x0 = model_output
            noise = (x_k - a.sqrt() * x0) / (1 - a).clamp(min=1e-12).sqrt()
        else:
            x0 = a.sqrt() * x_k - (1 - a).sqrt() * model_output
            noise = (1 - a).sqrt() * x_k + a.sqrt() * model_output
        return x0, noise

    def loss_weights(self, k: Tensor) -> Tensor:
        """Per-token weights (B, T) for the MSE on the chosen objective.

        min-SNR (Hang et al. 2023) caps SNR at `snr_clip`. Fused SNR (DF v1.5) treats a token whose predecessors
        are nearly clean as easier: clipped normalised SNRs s_t = min(SNR_t, snr_clip) / snr_clip feed a running
        context c_1 = s_0, c_t = d·c_{t-1} + (1-d)·s_{t-1} (c_0 = 0; d = `cum_snr_decay` per token), and token t
        weighs as if its SNR were snr_clip · (1 − (1 − d·c_t)(1 − s_t)).
        """
        cfg = self.config
        snr = self.snr[k]
        if cfg.use_fused_snr:
            decay = self.cum_snr_decay
            snr_clipped = snr.clamp(max=cfg.snr_clip) / cfg.snr_clip
            snr_norm = snr / cfg.snr_clip
            contexts = [torch.zeros_like(snr[:, 0])]
            for t in range(1, snr.shape[1]):
                previous = snr_clipped[:, t - 1]
                contexts.append(previous if t == 1 else decay * contexts[-1] + (1 - decay) * previous)
            context = torch.stack(contexts, dim=1)
            clipped = (1 - (1 - decay * context) * (1 - snr_clipped)) * cfg.snr_clip
            snr = (1 - (1 - decay * context) * (1 - snr_norm)) * cfg.snr_clip
        elif cfg.use_snr:
            clipped = snr.clamp(max=cfg.snr_clip)
        else:
            return torch.ones_like(snr)
        if cfg.objective == "pred_noise":
            return clipped / snr
        if cfg.objective == "pred_x0":
            return clipped
        return clipped / (snr + 1)

    def loss(self, model_output: Tensor, target: Tensor, k: Tensor, token_weights: Tensor | None = None) -> Tensor:
        """Per-token MSE, weighted by SNR and by `token_weights` (B, T) when given, averaged over all tokens."""
        per_token = F.mse_loss(model_output, target, reduction="none").flatten(2).mean(-1)
        per_token = per_token * self.loss_weights(k)
        return (per_token if token_weights is None else per_token * token_weights).mean()

    def ddim_update(
        self, x_k: Tensor, x0: Tensor, k_from: Tensor, k_to: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """One DDIM update (Song et al. 2021, eq. 12) per token toward an estimate x̂_0, level k_from → k_to.

        ε̂ is re-derived from x_k and x̂_0 (so an x̂_0 changed by clipping or guidance moves it too); tokens with
        k_from == k_to are returned unchanged; eta = `ddim_sampling_eta` interpolates between deterministic DDIM
        (0) and DDPM-like ancestral noise (1), drawn clipped to ±`clip_noise`.
        """
        a_from, a_to = self.alpha_bar(k_from, x_k), self.alpha_bar(k_to, x_k)
        noise = (x_k - a_from.sqrt() * x0) / (1 - a_from).clamp(min=1e-12).sqrt()
        eta = self.config.ddim_sampling_eta
        sigma = eta * ((1 - a_to) / (1 - a_from).clamp(min=1e-12) * (1 - a_from / a_to)).clamp(min=0).sqrt()
        direction = (1 - a_to - sigma**2).clamp(min=0).sqrt()
        x_next = a_to.sqrt() * x0 + direction * noise
        if eta > 0:
            x_next = x_next + sigma * self.clipped_noise(x_k.shape, x_k, generator)
        changes = (k_from != k_to).reshape(*k_from.shape, *([1] * (x_k.ndim - k_from.ndim)))
        return torch.where(changes, x_next, x_k)
