"""Video clips cut from episodes stored one `.npz` per episode (`video` (L, H, W, 3) uint8, `actions` (L,) int).

This is the on-disk layout shared by every video dataset here (the embedded simulators and TECO's DMLab), with
one folder per split (`split_folders`; TECO names them `train/` and `test/`). Training clips start anywhere in an
episode; validation clips are `validation_multiplier` times longer and start at frame 0, so evaluation is the
same for every run.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from utils.typed_config import ConfigError, require

Split = Literal["training", "validation", "test"]


@dataclass(frozen=True)
class VideoDatasetConfig:
    """The original's `dataset.*` keys for video; shape keys are read by the algorithm through interpolation."""

    save_dir: str
    resolution: int
    n_frames: int
    frame_skip: int = 1
    context_length: int = 2
    external_cond_dim: int = 0
    observation_shape: tuple[int, ...] = (3, 64, 64)
    validation_multiplier: int = 1
    subset: int | None = None
    num_eval_videos: int | None = None

    def __post_init__(self) -> None:
        require(self.resolution > 0, "resolution", f"must be > 0, got {self.resolution}")
        require(self.n_frames >= 1, "n_frames", f"must be >= 1, got {self.n_frames}")
        require(self.frame_skip >= 1, "frame_skip", f"must be >= 1, got {self.frame_skip}")
        require(self.validation_multiplier >= 1, "validation_multiplier", "must be >= 1")
        require(
            self.num_eval_videos is None or self.num_eval_videos >= 1,
            "num_eval_videos",
            f"must be >= 1 or null (every validation episode), got {self.num_eval_videos}",
        )
        require(self.subset is None or self.subset >= 1, "subset", f"must be >= 1 episodes or null, got {self.subset}")


class VideoEpisodeDataset(Dataset):
    """Items are dicts with `videos` (T, 3, H, W) in [-1, 1] and, when actions exist, one-hot `actions` (T, A).

    `subset` keeps the first N episodes (sorted by file name) of each split: a quick run on a big dataset.
    Evaluation uses one clip from the start of each of the first `num_eval_videos` episodes, so every run and
    every method is scored on the same clips.
    """

    split_folders = {"training": "training", "validation": "validation", "test": "validation"}

    def __init__(self, config: VideoDatasetConfig, split: Split) -> None:
        self.config = config
        self.split = split
        self.prepare()
        folder = self.split_dir
        self.episodes = sorted(folder.glob("*.npz"))[: self.episode_count]
        if not self.episodes:
            raise ConfigError("dataset.save_dir", f"no episodes (*.npz) in {folder}")
        self.lengths = [len(self.actions(path)) for path in self.episodes]
        frames = config.n_frames * (config.validation_multiplier if split != "training" else 1)
        self.span = (frames - 1) * config.frame_skip + 1
        self.clips = self._clip_index()
        if not self.clips:
            raise ConfigError(
                "dataset.n_frames",
                f"episodes in {folder} have at most {max(self.lengths)} frames, fewer than the {self.span} "
                f"a clip needs (n_frames × frame_skip × validation_multiplier)",
            )

    @property
    def split_dir(self) -> Path:
        return Path(self.config.save_dir) / self.split_folders[self.split]

    def prepare(self) -> None:
        """Make the split available on disk (generate or download); the base class expects it present."""

    @property
    def episode_count(self) -> int | None:
        """How many episodes (sorted by file name) to read; None = all."""
        return self.config.subset

    def actions(self, path: Path) -> np.ndarray:
        """All actions (L,) of one episode; its length is the episode's length in frames."""
        with np.load(path) as episode:
            return episode["actions"]

    def load_frames(self, path: Path, steps: slice) -> tuple[np.ndarray, np.ndarray]:
        """Frames (T, H, W, 3) uint8 and actions (T,) of one episode at `steps`."""
        with np.load(path) as data:
            return data["video"][steps], data["actions"][steps]

    def _clip_index(self) -> list[tuple[int, int]]:
        if self.split == "training":
            return [(e, s) for e, length in enumerate(self.lengths) for s in range(length - self.span + 1)]
        clips = [(e, 0) for e, length in enumerate(self.lengths) if length >= self.span]
        return clips[: self.config.num_eval_videos]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        episode, start = self.clips[index]
        steps = slice(start, start + self.span, self.config.frame_skip)
        video, actions = self.load_frames(self.episodes[episode], steps)
        frames = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1
        if frames.shape[-1] != self.config.resolution:
            frames = F.interpolate(frames, size=self.config.resolution, mode="area")
        item = {"videos": frames}
        if self.config.external_cond_dim:
            item["actions"] = F.one_hot(torch.from_numpy(actions).long(), self.config.external_cond_dim).float()
        return item
