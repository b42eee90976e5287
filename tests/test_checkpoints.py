"""How `load=` / `resume=` values become checkpoint files."""

from pathlib import Path

import pytest
import torch

from utils import checkpoints
from utils.checkpoints import resolve_checkpoint, write_run_file
from utils.typed_config import ConfigError


def fake_checkpoint(path: Path, step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": step}, path)
    return path


def resolve(key: str, value: str, root: Path, online: bool = False) -> Path:
    return resolve_checkpoint(key, value, root, online, None, "proj", root / "downloads")


def test_run_id_finds_latest_checkpoint_across_resumed_dirs(tmp_path: Path) -> None:
    import os

    for i, name in enumerate(["a", "b"]):
        write_run_file(tmp_path / name, "abcd1234", "x")
        ckpt = fake_checkpoint(tmp_path / name / "checkpoints" / "last.ckpt", i)
        os.utime(ckpt, (1000 + i, 1000 + i))
    write_run_file(tmp_path / "other", "zzzz9999", "y")
    assert resolve("resume", "abcd1234", tmp_path) == tmp_path / "b" / "checkpoints" / "last.ckpt"


def test_online_run_falls_back_to_the_wandb_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def download(run_id: str, entity: str | None, project: str, destination: Path) -> Path:
        calls.append((run_id, project))
        return fake_checkpoint(destination / "model.ckpt", 7)

    monkeypatch.setattr(checkpoints, "download_wandb_checkpoint", download)
    assert resolve("resume", "remote42", tmp_path, online=True).name == "model.ckpt"
    assert calls == [("remote42", "proj")]


def test_online_run_without_artifact_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def download(*_: object) -> Path:
        raise RuntimeError("artifact not found")

    monkeypatch.setattr(checkpoints, "download_wandb_checkpoint", download)
    with pytest.raises(ConfigError, match="resume: run 'gone' has no checkpoint artifact on wandb"):
        resolve("resume", "gone", tmp_path, online=True)


def test_checkpoint_without_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.ckpt"
    torch.save({"weights": 1}, path)
    with pytest.raises(ConfigError, match="not a Lightning checkpoint"):
        resolve("load", str(path), tmp_path)
