"""Checkpoints written so that a process killed at any moment leaves either the previous file or the new one.

Lightning writes a local checkpoint into the system temp folder and then moves it into place; when that folder
is on another filesystem (node-local /tmp on a cluster) the move is a copy, and a kill during it leaves a
truncated `.ckpt`. Here the file is written beside its destination under a hidden name, flushed to disk and
renamed, which is atomic on a POSIX filesystem.
"""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

PARTIAL_SUFFIX = ".partial"


def atomic_save(content: Any, path: Path) -> None:
    """`torch.save(content, path)` that never leaves a partly written `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}{PARTIAL_SUFFIX}")
    with open(partial, "wb") as file:
        torch.save(content, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with `atomic_save` for local paths (remote URLs keep Lightning's own)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
        else:
            atomic_save(checkpoint, Path(path))
