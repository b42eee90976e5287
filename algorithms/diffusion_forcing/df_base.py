"""The Diffusion Forcing LightningModule: independent per-token noise levels in training, scheduled sampling.

Domain modules (video, planning) supply the network and say how a batch becomes tokens; this class owns the
training step, the optimiser and LR warm-up, and builds the sampler. The diffusion math lives in
`models/diffusion.py` and the scheduling matrices in `scheduling.py`.
"""

from dataclasses import dataclass
from functools import partial
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import grad_norm
from torch import Tensor, nn

from utils.typed_config import require

from .checkpoint_layouts import LAYOUT, LAYOUT_KEY, check_rotary_frequencies, check_schedule, network_weights
from .models.diffusion import Diffusion, DiffusionConfig
from .models.embeddings import RotaryEmbedding
from .sampling import Sampler
from .scheduling import SchedulingMatrix

NoiseLevel = Literal["random_all", "teacher_forcing", "full_sequence"]


@dataclass(frozen=True)
class DFBaseConfig:
    """Keys shared by every Diffusion Forcing algorithm (`algorithm.*`)."""

    n_frames: int
    context_frames: int
    external_cond_dim: int = 0
    frame_skip: int = 1
    causal: bool = True
    noise_level: NoiseLevel = "random_all"
    lr: float = 8e-5
    weight_decay: float = 2e-3
    optimizer_beta: tuple[float, ...] = (0.9, 0.99)
    warmup_steps: int = 10000
    lr_cooldown_steps: int = 0
    lr_cooldown_end: int = 0
    scheduling_matrix: SchedulingMatrix = "autoregressive"
    chunk_size: int = 1
    uncertainty_scale: float = 1.0
    kv_cache: bool = False
    debug: bool = False

    def __post_init__(self) -> None:
        require(self.n_frames >= 1, "n_frames", f"must be >= 1, got {self.n_frames}")
        require(
            0 <= self.context_frames < self.n_frames,
            "context_frames",
            f"must be in [0, n_frames={self.n_frames}) so something is generated, got {self.context_frames}",
        )
        require(self.external_cond_dim >= 0, "external_cond_dim", "must be >= 0")
        require(self.frame_skip >= 1, "frame_skip", f"must be >= 1, got {self.frame_skip}")
        require(self.lr > 0, "lr", f"must be > 0 (set experiment.training.lr), got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(len(self.optimizer_beta) == 2, "optimizer_beta", "must be two numbers, e.g. [0.9,0.99]")
        require(
            self.noise_level != "teacher_forcing" or self.causal,
            "noise_level",
            "teacher_forcing needs algorithm.causal=true (later tokens must not reach the predicted one)",
        )
        require(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        require(self.lr_cooldown_steps >= 0, "lr_cooldown_steps", f"must be >= 0, got {self.lr_cooldown_steps}")
        room = self.n_frames - max(self.context_frames, 1)
        require(
            self.chunk_size == -1 or 1 <= self.chunk_size <= room,
            "chunk_size",
            f"must be -1 (whole window) or in [1, {room}] for n_frames={self.n_frames}, got {self.chunk_size}",
        )
        require(self.uncertainty_scale >= 0, "uncertainty_scale", f"must be >= 0, got {self.uncertainty_scale}")

    @property
    def frames_per_token(self) -> int:
        """Dataset frames one token spans (fused SNR's decay is per dataset frame)."""
        return self.frame_skip


class DiffusionForcingBase(pl.LightningModule):
    """Trains any network (x_k, k, cond, positions) → target under per-token noise levels.

    DF v1.5 checkpoints load through `adapt_to_original` (before building) and `load_original`; a domain says
    where its network's weights live there (`original_prefix`) and what they are called (`original_key`).
    """

    original_prefix = "diffusion_model.model."

    def __init__(self, config: DFBaseConfig, diffusion: DiffusionConfig, network: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.diffusion = Diffusion(diffusion, config.frames_per_token)
        self.model = network
        self.register_buffer("trained_steps", torch.zeros((), dtype=torch.long))
        self._step_offset = 0

    @classmethod
    def adapt_to_original(cls, config: DFBaseConfig) -> tuple[DFBaseConfig, list[str]]:
        """The config a DF v1.5 checkpoint needs, and a line for each value changed; by default: unchanged."""
        return config, []

    @staticmethod
    def original_key(key: str) -> str:
        """The DF v1.5 name (under `original_prefix`) of our network's weight `key`."""
        return key

    def original_extras(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Our tensors outside the network that come from a DF v1.5 state dict; by default none."""
        return {}

    def load_original(self, state: dict[str, Tensor], global_step: int) -> None:
        """Load a DF v1.5 `state_dict`: network weights renamed and reshaped, fixed tensors checked."""
        config = self.diffusion.config
        check_schedule(state, config.beta_schedule, config.timesteps)
        rotary = next((m.inv_freq for m in self.model.modules() if isinstance(m, RotaryEmbedding)), None)
        if rotary is not None:
            check_rotary_frequencies(state, self.original_prefix, rotary)
        extras = self.original_extras(state)
        weights = network_weights(state, self.model.state_dict(), self.original_prefix, self.original_key)
        converted = {f"model.{k}": v for k, v in weights.items()} | extras
        converted["trained_steps"] = torch.tensor(global_step)
        self.load_state_dict(converted)

    @property
    def step(self) -> int:
        """Optimiser steps these weights have had: also counts the steps of weights started from with `load=`, and
        holds in a validation-only run."""
        return max(self._step_offset + self.global_step, int(self.trained_steps))

    def on_train_start(self) -> None:
        # weights from `load=` arrive with their steps and a trainer at 0; a resumed run restores both
        self._step_offset = max(int(self.trained_steps) - self.global_step, 0)

    def on_train_batch_end(self, *args: object) -> None:
        self._count_steps()

    def on_train_end(self) -> None:
        # after callbacks: `experiment.ema` has just copied in the average, whose counter lags one step
        self._count_steps()

    def _count_steps(self) -> None:
        self.trained_steps.fill_(self._step_offset + self.global_step)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # callbacks checkpoint before this module's on_train_batch_end has counted the step just taken
        checkpoint["state_dict"]["trained_steps"] = torch.tensor(self.step)
        checkpoint[LAYOUT_KEY] = LAYOUT

    @property
    def sampler(self) -> Sampler:
        return Sampler(
            self.diffusion,
            self.model,
            kind=self.config.scheduling_matrix,
            window=self.config.n_frames,
            chunk_size=self.config.chunk_size,
            uncertainty_scale=self.config.uncertainty_scale,
            kv_cache=self.config.kv_cache and self.config.causal,
        )

    def tokens(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """(x0 (B, T, ...), external_cond (B, T, D) or None, mask (B, T) of real tokens or None)."""
        raise NotImplementedError(f"{type(self).__name__} must say how a batch becomes tokens")

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x0, cond, mask = self.tokens(batch)
        k, trained = training_levels(self.config.noise_level, x0.shape[:2], self.diffusion.config.timesteps, x0.device)
        if trained is not None:
            mask = trained if mask is None else mask * trained
        loss = self.denoising_loss(x0, k, cond, mask)
        self.log("training/loss", loss, prog_bar=True, batch_size=x0.shape[0])
        return loss

    def denoising_loss(
        self,
        x0: Tensor,
        k: Tensor,
        cond: Tensor | None,
        token_weights: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The DF objective for clean tokens x0 at levels k (B, T): noise them, predict, weigh the error.

        Training draws its own noise; a `generator` fixes it, so the loss of one batch can be compared over time.
        """
        noise = self.diffusion.clipped_noise(x0.shape, x0, generator)
        noisy = self.diffusion.q_sample(x0, k.clamp(min=0), noise)
        clean = (k < 0).reshape(*k.shape, *([1] * (x0.ndim - k.ndim)))
        x_in, k_in = self.diffusion.stabilize(torch.where(clean, x0, noisy), k)  # clean tokens as in sampling
        prediction = self.model(x_in, k_in, cond, None)
        return self.diffusion.loss(prediction, self.diffusion.target(x0, noise, k_in), k_in, token_weights)

    def configure_optimizers(self) -> dict:
        cfg = self.config
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.optimizer_beta)
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, partial(lr_factor, cfg.warmup_steps, cfg.lr_cooldown_steps, cfg.lr_cooldown_end)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.config.debug:
            self.log_dict(grad_norm(self, norm_type=2))
            norms = {f"param_norm/{n}": p.detach().norm() for n, p in self.named_parameters()}
            self.log_dict(norms)


def lr_factor(warmup_steps: int, cooldown_steps: int, cooldown_end: int, step: int) -> float:
    """The learning rate at optimiser step `step` as a fraction of `lr`: a linear warm-up (DF v1.5), then
    constant, then — with `cooldown_steps` > 0 — a linear fall to 0 over the last `cooldown_steps` before
    `cooldown_end`. Annealing turns the noisy weights of a short high-rate run into much better ones."""
    factor = min(1.0, (step + 1) / max(warmup_steps, 1))
    if cooldown_steps > 0:
        factor = min(factor, max(0.0, (cooldown_end - step) / cooldown_steps))
    return factor


def training_levels(
    mode: NoiseLevel, shape: torch.Size, timesteps: int, device: torch.device
) -> tuple[Tensor, Tensor | None]:
    """Noise levels (B, T) for one training batch, and which tokens the loss counts (None: all).

    - `random_all` (Diffusion Forcing): an independent level per token.
    - `full_sequence`: one level shared by every token of a clip (causal full-sequence diffusion).
    - `teacher_forcing` (next-token diffusion): per clip a random token t ≥ 1 is noised and alone counted, the
      tokens before it are clean (-1, shown as in sampling) and those after it, which a causal network keeps
      from reaching t, are pure noise.
    """
    batch, length = shape
    if mode == "random_all":
        return torch.randint(0, timesteps, (batch, length), device=device), None
    if mode == "full_sequence":
        return torch.randint(0, timesteps, (batch, 1), device=device).expand(batch, length).contiguous(), None
    if length < 2:
        raise ValueError("teacher_forcing needs clips of at least 2 tokens: one clean, one to predict")
    position = torch.arange(length, device=device)
    target = torch.randint(1, length, (batch, 1), device=device)
    k = torch.where(position < target, -1, timesteps - 1)
    k = torch.where(position == target, torch.randint(0, timesteps, (batch, 1), device=device), k)
    return k, (position == target).float()
