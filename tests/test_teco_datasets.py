"""TECO DMLab and Minecraft: download from a local archive.org stand-in, resume, verify, extract, load, train."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.download import Source, download_parts
from datasets.video.dmlab_video import DMLabVideoDataset
from datasets.video.minecraft_video import MinecraftVideoDataset
from datasets.video.teco_dataset import TecoDatasetConfig
from tests.archive_server import ArchiveServer, dmlab_episode, npz_bytes, publish_teco_archive
from tests.conftest import tiny_run_overrides
from utils.typed_config import ConfigError
from utils.video_io import write_video

EPISODE_LENGTH = 24
DMLAB_PARTS = ("aa", "ab", "ac")


def dmlab_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    names = [f"train/{i}.npz" for i in range(3)] + [f"test/{i}.npz" for i in range(2)]
    return {name: npz_bytes(dmlab_episode(rng, EPISODE_LENGTH)) for name in names}


def minecraft_files(tmp_path: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    files = {}
    for split, count in (("train", 2), ("test", 1)):
        for i in range(count):
            frames = np.repeat(np.linspace(0, 255, EPISODE_LENGTH, dtype=np.uint8)[:, None, None, None], 3, -1)
            video = np.broadcast_to(frames, (EPISODE_LENGTH, 128, 128, 3)).copy()
            files[f"{split}/{i}.mp4"] = write_video(tmp_path / f"{split}{i}.mp4", video).read_bytes()
            files[f"{split}/{i}.npz"] = npz_bytes({"actions": rng.integers(0, 4, EPISODE_LENGTH + 1)})
    return files


@pytest.fixture
def dmlab_server(tmp_path: Path):
    root = tmp_path / "archive"
    publish_teco_archive(root, "dmlab", "dmlab_dataset_", DMLAB_PARTS, dmlab_files())
    with ArchiveServer(root) as server:
        yield server


def dmlab_config(save_dir: Path, url: str, **kwargs) -> TecoDatasetConfig:
    defaults = dict(resolution=64, n_frames=4, frame_skip=2, context_length=2, external_cond_dim=3)
    return TecoDatasetConfig(save_dir=str(save_dir), download_url=url, **{**defaults, **kwargs})


def test_dmlab_downloads_extracts_and_loads(dmlab_server: ArchiveServer, tmp_path: Path) -> None:
    save_dir = tmp_path / "data" / "dmlab"
    dataset = DMLabVideoDataset(dmlab_config(save_dir, dmlab_server.url), "training")
    assert sorted(p.name for p in (save_dir / "train").iterdir()) == ["0.npz", "1.npz", "2.npz"]
    assert not (tmp_path / "data" / ".dmlab.download").exists()
    item = dataset[0]
    assert item["videos"].shape == (4, 3, 64, 64) and item["actions"].shape == (4, 3)
    assert len(dataset) == 3 * (EPISODE_LENGTH - 7 + 1)  # every start of a 7-frame span
    expected = np.load(save_dir / "train" / "0.npz")["video"][0:7:2]
    torch.testing.assert_close(item["videos"], torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 127.5 - 1)
    validation = DMLabVideoDataset(dmlab_config(save_dir, dmlab_server.url), "validation")
    assert len(validation) == 2


def test_subset_keeps_the_first_episodes(dmlab_server: ArchiveServer, tmp_path: Path) -> None:
    dataset = DMLabVideoDataset(dmlab_config(tmp_path / "dmlab", dmlab_server.url, subset=1), "training")
    assert [p.name for p in dataset.episodes] == ["0.npz"]


def test_dropped_connection_resumes_with_a_range_request(dmlab_server: ArchiveServer, tmp_path: Path) -> None:
    path = "/download/dmlab_dataset_ab/dmlab.tar.partab"
    dmlab_server.drop_after[path] = 1000
    DMLabVideoDataset(dmlab_config(tmp_path / "dmlab", dmlab_server.url), "training")
    ranges = [header for requested, header in dmlab_server.requests if requested == path]
    assert ranges == [None, "bytes=1000-"]


def test_bad_checksum_is_refused_and_removed(dmlab_server: ArchiveServer, tmp_path: Path) -> None:
    metadata = dmlab_server.root / "metadata" / "dmlab_dataset_ac"
    content = json.loads(metadata.read_text())
    content["files"][0]["md5"] = "0" * 32
    metadata.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=r"dmlab.tar.partac: got \d+ bytes that do not match .* md5 0{32}"):
        DMLabVideoDataset(dmlab_config(tmp_path / "dmlab", dmlab_server.url), "training")
    downloads = tmp_path / ".dmlab.download"
    assert sorted(p.name for p in downloads.iterdir()) == ["dmlab.tar.partaa", "dmlab.tar.partab"]
    assert not (tmp_path / "dmlab").exists()


def test_interrupted_extraction_never_looks_complete(
    dmlab_server: ArchiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extract = tarfile.TarFile.extract
    calls = []

    def crash_on_third_file(archive: tarfile.TarFile, member: tarfile.TarInfo, *args, **kwargs) -> None:
        calls.append(member.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        extract(archive, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", crash_on_third_file)
    config = dmlab_config(tmp_path / "dmlab", dmlab_server.url)
    with pytest.raises(KeyboardInterrupt):
        DMLabVideoDataset(config, "training")
    assert not (tmp_path / "dmlab").exists() and (tmp_path / ".dmlab.extracting").exists()
    monkeypatch.setattr(tarfile.TarFile, "extract", extract)
    served = len(dmlab_server.requests)
    assert len(DMLabVideoDataset(config, "training").episodes) == 3
    assert len(dmlab_server.requests) == served + 3  # metadata only: the verified parts were kept
    assert not (tmp_path / ".dmlab.extracting").exists()


def test_unreachable_source_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^dataset.download_url: cannot reach http://127.0.0.1:9/metadata/"):
        DMLabVideoDataset(dmlab_config(tmp_path / "dmlab", "http://127.0.0.1:9"), "training")


def test_parts_download_in_parallel_into_one_folder(dmlab_server: ArchiveServer, tmp_path: Path) -> None:
    parts = [(f"dmlab_dataset_{s}", f"dmlab.tar.part{s}") for s in DMLAB_PARTS]
    paths = download_parts(Source(dmlab_server.url), parts, tmp_path / "parts", workers=3)
    assert [p.name for p in paths] == [name for _, name in parts]
    served = dmlab_server.root / "download"
    assert all(
        p.read_bytes() == (served / item / p.name).read_bytes() for (item, _), p in zip(parts, paths, strict=True)
    )


def test_minecraft_reads_mp4_beside_actions(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    suffixes = MinecraftVideoDataset.part_suffixes
    publish_teco_archive(root, "minecraft", "minecraft_marsh_dataset_", suffixes, minecraft_files(tmp_path))
    with ArchiveServer(root) as server:
        config = TecoDatasetConfig(
            save_dir=str(tmp_path / "minecraft"),
            download_url=server.url,
            resolution=32,
            n_frames=5,
            frame_skip=2,
            external_cond_dim=4,
        )
        dataset = MinecraftVideoDataset(config, "training")
    assert len(dataset.episodes) == 2 and dataset.lengths == [EPISODE_LENGTH, EPISODE_LENGTH]
    item = dataset[3]
    assert item["videos"].shape == (5, 3, 32, 32) and item["actions"].shape == (5, 4)
    brightness = item["videos"].mean(dim=(1, 2, 3))
    expected = torch.linspace(0, 255, EPISODE_LENGTH)[3:12:2] / 127.5 - 1
    torch.testing.assert_close(brightness, expected, atol=0.05, rtol=0)
    actions = np.load(tmp_path / "minecraft" / "train" / "0.npz")["actions"][1:][3:12:2]
    assert item["actions"].argmax(-1).tolist() == actions.tolist()


@pytest.mark.parametrize("dataset", ["video_dmlab", "video_minecraft"])
def test_two_step_training_on_each_teco_config(dataset: str, tmp_path: Path, run_main) -> None:
    root = tmp_path / "archive"
    if dataset == "video_dmlab":
        publish_teco_archive(root, "dmlab", "dmlab_dataset_", DMLAB_PARTS, dmlab_files())
    else:
        suffixes = MinecraftVideoDataset.part_suffixes
        publish_teco_archive(root, "minecraft", "minecraft_marsh_dataset_", suffixes, minecraft_files(tmp_path))
    with ArchiveServer(root) as server:
        overrides = [
            *tiny_run_overrides(tmp_path / "outputs"),
            f"dataset={dataset}",
            f"dataset.save_dir={tmp_path / 'data'}",
            f"dataset.download_url={server.url}",
            "experiment.tasks=[training,validation]",
        ]
        run_dir = run_main(overrides)
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    scores = ("mse", "psnr", "ssim")
    predictors = ("validation", "validation/copy_last", "validation/mean_colour")
    assert set(metrics) == {f"{who}/{score}" for who in predictors for score in scores}
    assert list((run_dir / "videos").glob("validation_*.mp4"))


def test_num_eval_videos_fixes_the_evaluation_clips(dmlab_server: ArchiveServer, tmp_path: Path) -> None:
    config = dmlab_config(tmp_path / "dmlab", dmlab_server.url, num_eval_videos=1)
    validation, training = DMLabVideoDataset(config, "validation"), DMLabVideoDataset(config, "training")
    assert validation.clips == [(0, 0)] and len(training) == 3 * (EPISODE_LENGTH - 7 + 1)
