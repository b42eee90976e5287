"""TECO's video datasets (Yan et al. 2023): downloaded from the Internet Archive on first use, then read as episodes.

Each dataset is one tar file published in parts, one archive.org item per part (`<item_prefix><suffix>` holding
`<archive_name>.tar.part<suffix>`). The tar holds `<archive_name>/train/` and `<archive_name>/test/`, which become
`dataset.save_dir`; `dataset.download_url` points at a mirror serving the same paths (see `datasets/download.py`).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from datasets.download import Source, download_parts, extract_concatenated_tar
from utils.typed_config import require

from .episode_dataset import VideoDatasetConfig, VideoEpisodeDataset


@dataclass(frozen=True)
class TecoDatasetConfig(VideoDatasetConfig):
    download_url: str = "https://archive.org"
    download_workers: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.download_url.startswith(("http://", "https://")),
            "download_url",
            f"must be an http(s) base URL like https://archive.org, got {self.download_url!r}",
        )
        require(self.download_workers >= 1, "download_workers", "must be >= 1")


class TecoVideoDataset(VideoEpisodeDataset):
    """Downloads and extracts the whole dataset into `save_dir` unless that folder already exists."""

    config: TecoDatasetConfig
    archive_name: ClassVar[str]
    item_prefix: ClassVar[str]
    part_suffixes: ClassVar[tuple[str, ...]]
    split_folders = {"training": "train", "validation": "test", "test": "test"}

    def prepare(self) -> None:
        save_dir = Path(self.config.save_dir)
        if save_dir.is_dir():
            return
        parts = [(f"{self.item_prefix}{s}", f"{self.archive_name}.tar.part{s}") for s in self.part_suffixes]
        downloads = save_dir.with_name(f".{save_dir.name}.download")
        paths = download_parts(Source(self.config.download_url), parts, downloads, self.config.download_workers)
        extract_concatenated_tar(paths, self.archive_name, save_dir)
        shutil.rmtree(downloads)
