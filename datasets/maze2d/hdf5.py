"""D4RL's maze2d hdf5 layout: `observations` (N, 4) = (row, col, v_row, v_col), `actions` (N, 2), `rewards` (N,),
`terminals` (N,), `timeouts` (N,), `infos/goal` (N, 2) — read with checks, written atomically."""

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from utils.typed_config import ConfigError

REQUIRED = {"observations": 4, "actions": 2, "infos/goal": 2}  # key → width of its last axis
FLAGS = ("terminals", "timeouts")


def check_hdf5(path: Path, key: str) -> None:
    """Refuse, as a `ConfigError` for `key`, a file that is not hdf5 or lacks a key or a shape; reads no data."""
    try:
        with h5py.File(path, "r") as file:
            _check_layout(file, path, key)
    except OSError as error:
        raise ConfigError(key, f"cannot read {path} as hdf5 ({error})") from None


def read_hdf5(path: Path, key: str) -> dict[str, np.ndarray]:
    """The arrays of a D4RL maze2d file, checked like `check_hdf5`."""
    try:
        with h5py.File(path, "r") as file:
            length = _check_layout(file, path, key)
            data = {k: np.asarray(file[k], dtype=np.float32) for k in REQUIRED}
            for flag in FLAGS:
                data[flag] = np.asarray(file[flag], dtype=bool) if flag in file else np.zeros(length, dtype=bool)
    except OSError as error:
        raise ConfigError(key, f"cannot read {path} as hdf5 ({error})") from None
    return data


def _check_layout(file: h5py.File, path: Path, key: str) -> int:
    """The number of steps in `file`, after checking its required keys and their shapes."""
    missing = [k for k in REQUIRED if k not in file]
    if missing:
        raise ConfigError(key, f"{path} lacks {', '.join(missing)} (a D4RL maze2d file has {_layout()})")
    length = file["observations"].shape[0]
    for k, width in REQUIRED.items():
        if file[k].shape != (length, width):
            raise ConfigError(key, f"{path}: {k} has shape {file[k].shape}, expected ({length}, {width})")
    return length


def write_hdf5(path: Path, data: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Write `data` (keys with `/` become groups) and `attrs`; readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with h5py.File(partial, "w") as file:
        for k, value in data.items():
            dtype = bool if k in FLAGS else np.float32
            file.create_dataset(k, data=np.asarray(value, dtype=dtype), compression="gzip")
        for k, value in attrs.items():
            file.attrs[k] = value
    partial.rename(path)


def _layout() -> str:
    return ", ".join(f"{k} (N, {w})" for k, w in REQUIRED.items())
