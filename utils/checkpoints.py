"""Finding the checkpoint behind `load=` and `resume=`: a file path, or a run id found under the outputs folder
(every run writes `run.json` with its id beside its `checkpoints/`) or, for online runs, a wandb artifact."""

import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from utils.typed_config import ConfigError

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"


def write_run_file(output_dir: Path, run_id: str, name: str) -> None:
    """Mark `output_dir` as belonging to run `run_id` so `resume=` / `load=` can find it later."""
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".{RUN_FILE}.partial"  # renamed into place: other ranks wait for the whole file
    partial.write_text(json.dumps({"id": run_id, "name": name}))
    partial.replace(output_dir / RUN_FILE)


def read_run_id(output_dir: Path) -> str | None:
    """The run id already recorded in `output_dir` (a requeued slurm job restarting there), else None."""
    try:
        return json.loads((output_dir / RUN_FILE).read_text())["id"]
    except (OSError, json.JSONDecodeError, KeyError):
        return None


def run_dirs(outputs_root: Path, run_id: str) -> list[Path]:
    """Every run directory under `outputs_root` that belongs to `run_id` (a resumed run spans several)."""
    dirs = []
    for marker in outputs_root.rglob(RUN_FILE):
        try:
            if json.loads(marker.read_text()).get("id") == run_id:
                dirs.append(marker.parent)
        except (OSError, json.JSONDecodeError):
            continue
    return dirs


def latest_local_checkpoint(key: str, outputs_root: Path, run_id: str, trusted: bool = False) -> Path | None:
    """The most recently written readable `.ckpt` of run `run_id`, or None when the run has none here.

    A newer file that cannot be read (a disk that filled up, a copy cut short) is skipped with one logged line.
    """
    checkpoints = [c for d in run_dirs(outputs_root, run_id) for c in (d / CHECKPOINT_DIR).glob("*.ckpt")]
    for checkpoint in sorted(checkpoints, key=lambda c: c.stat().st_mtime, reverse=True):
        try:
            return check_checkpoint(key, checkpoint, trusted)
        except ConfigError as error:
            log.warning("%s: skipped, the newer file cannot be read: %s", key, error.message)
    return None


def download_wandb_checkpoint(run_id: str, entity: str | None, project: str, destination: Path) -> Path:
    """Fetch the latest checkpoint artifact `model-<run_id>` that WandbLogger(log_model=...) uploaded."""
    import wandb

    path = f"{entity}/{project}/model-{run_id}:latest" if entity else f"{project}/model-{run_id}:latest"
    folder = Path(wandb.Api().artifact(path, type="model").download(root=str(destination)))
    return next(folder.glob("*.ckpt"))


def resolve_checkpoint(
    key: str,
    value: str,
    outputs_root: Path,
    online: bool,
    entity: str | None,
    project: str,
    download_dir: Path,
    trusted: bool = False,
) -> Path:
    """Turn a `load=` / `resume=` value into a readable checkpoint file, or a `ConfigError` naming `key`."""
    path = Path(value).expanduser()
    if path.is_file():
        return check_checkpoint(key, path, trusted)
    if key == "load" and (path.suffix == ".ckpt" or "/" in value):
        raise ConfigError(key, f"no checkpoint file at {path}; give an existing .ckpt path or a run id")
    local = latest_local_checkpoint(key, outputs_root, value, trusted)
    if local is not None:
        return local
    if online:
        try:
            return check_checkpoint(key, download_wandb_checkpoint(value, entity, project, download_dir), trusted)
        except (Exception, StopIteration) as error:
            raise ConfigError(key, f"run {value!r} has no checkpoint artifact on wandb ({error})") from None
    raise ConfigError(
        key,
        f"no run {value!r} with a checkpoint under {outputs_root}/; give a run id from there, a .ckpt path, "
        f"or use wandb.mode=online to fetch the run's checkpoint artifact",
    )


def check_checkpoint(key: str, path: Path, trusted: bool = False) -> Path:
    """Open the file once so a truncated or foreign file fails here with one line, not mid-training."""
    content = load_checkpoint(key, path, trusted)
    if not isinstance(content, dict) or "state_dict" not in content:
        raise ConfigError(key, f"{path} is not a Lightning checkpoint (no 'state_dict')")
    return path


def load_checkpoint(key: str, path: Path, trusted: bool = False, mmap: bool = False) -> Any:
    """The checkpoint at `path`, unpickling only tensors and plain containers unless `trusted`.

    A file from elsewhere that needs more (a class of its own code) could run arbitrary code when unpickled, so it
    is refused in one line that names the risk and `trust_checkpoint=true`, the switch that accepts it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted, mmap=mmap)
    except pickle.UnpicklingError as error:
        needs = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if trusted or needs is None:
            raise _unreadable(key, path, error) from None
        raise ConfigError(
            key,
            f"{path} holds pickled Python objects besides tensors ({needs.group(1)}); unpickling them can run "
            "arbitrary code; if you trust where the file came from, add trust_checkpoint=true",
        ) from None
    except Exception as error:
        raise _unreadable(key, path, error) from None


def _unreadable(key: str, path: Path, error: Exception) -> ConfigError:
    first_sentence = (str(error).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
    return ConfigError(key, f"{path} is not a readable checkpoint ({type(error).__name__}: {first_sentence})")
