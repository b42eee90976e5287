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


def test_resume_skips_an_unreadable_newest_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import os

    write_run_file(tmp_path / "a", "abcd1234", "x")
    good = fake_checkpoint(tmp_path / "a" / "checkpoints" / "step_3.ckpt", 3)
    cut_short = tmp_path / "a" / "checkpoints" / "step_4.ckpt"
    cut_short.write_bytes(good.read_bytes()[:100])
    os.utime(good, (1000, 1000))
    with caplog.at_level("WARNING"):
        assert resolve("resume", "abcd1234", tmp_path) == good
    assert [r.getMessage() for r in caplog.records] == [
        f"resume: skipped, the newer file cannot be read: {cut_short} is not a readable checkpoint (RuntimeError: "
        "PytorchStreamReader failed reading zip archive: failed finding central directory)"
    ]


class Pickled:
    """A class of someone else's code inside a checkpoint: unpickling it could run anything."""


def test_checkpoint_with_pickled_objects_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "extra": Pickled()}, path)
    with pytest.raises(ConfigError, match=r"load: .* holds pickled Python objects besides tensors \(tests.test_check"):
        resolve("load", str(path), tmp_path)
    with pytest.raises(ConfigError, match="add trust_checkpoint=true"):
        resolve("load", str(path), tmp_path)
    assert resolve_checkpoint("load", str(path), tmp_path, False, None, "p", tmp_path, trusted=True) == path


def test_atomic_save_leaves_the_old_file_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.atomic_checkpoint_io import atomic_save

    path = tmp_path / "last.ckpt"
    atomic_save({"state_dict": {}, "global_step": 1}, path)
    real_save = torch.save

    def dies_midway(content: object, file: object) -> None:
        real_save(content, file)
        file.truncate(50)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"state_dict": {}, "global_step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.ckpt.partial", "last.ckpt"]
