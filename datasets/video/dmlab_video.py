"""`dataset=video_dmlab`: TECO's DeepMind Lab navigation episodes (`.npz` with `video` (300, 64, 64, 3) uint8 and
`actions` (300,) in {0, 1, 2}); three parts of about 13 GB each."""

from .teco_dataset import TecoVideoDataset


class DMLabVideoDataset(TecoVideoDataset):
    archive_name = "dmlab"
    item_prefix = "dmlab_dataset_"
    part_suffixes = ("aa", "ab", "ac")
