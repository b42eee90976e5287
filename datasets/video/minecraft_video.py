"""`dataset=video_minecraft`: TECO's Minecraft episodes, an `.mp4` of 300 frames at 128² beside an `.npz` of
`actions` in {0..3} per episode; eleven parts. As in the original, the first action entry is dropped so that
action t is the one taken with frame t."""

from pathlib import Path

import av
import numpy as np

from .teco_dataset import TecoVideoDataset


class MinecraftVideoDataset(TecoVideoDataset):
    archive_name = "minecraft"
    item_prefix = "minecraft_marsh_dataset_"
    part_suffixes = tuple(f"a{letter}" for letter in "abcdefghijk")

    def actions(self, path: Path) -> np.ndarray:
        with np.load(path) as episode:
            return episode["actions"][1:]

    def load_frames(self, path: Path, steps: slice) -> tuple[np.ndarray, np.ndarray]:
        """Decode the episode's `.mp4` only up to the last frame the clip needs."""
        frames = []
        with av.open(str(path.with_suffix(".mp4"))) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index >= steps.stop:
                    break
                if index >= steps.start and (index - steps.start) % steps.step == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
        return np.stack(frames), self.actions(path)[steps]
