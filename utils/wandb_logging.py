"""The wandb logger every run uses: offline by default (no account), online or disabled on request."""

from pathlib import Path
from typing import Literal

from lightning.pytorch.loggers import WandbLogger

WandbMode = Literal["offline", "online", "disabled"]
WANDB_MODES = ("offline", "online", "disabled")


def make_wandb_logger(
    mode: WandbMode, entity: str | None, project: str, name: str, run_id: str, save_dir: Path, resuming: bool
) -> WandbLogger:
    """A Lightning WandbLogger writing under the run directory; online runs also upload checkpoints."""
    return WandbLogger(
        name=name,
        id=run_id,
        project=project,
        entity=entity,
        save_dir=str(save_dir),
        log_model="all" if mode == "online" else False,
        mode=mode,
        resume="allow" if resuming else None,
    )
