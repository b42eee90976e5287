"""Small tasks that a working Diffusion Forcing model learns in seconds on CPU, for the learning tests.

`moving_squares`: a white square (a quarter of the frame's side) on black moves an eighth of the side per frame in
the direction of its one-hot action (wrapping around), so the next frame is fully determined by the last one and
the action. Copying the last frame is wrong by the motion; a model that ignores its context cannot know where
the square is.
"""

import torch
from torch import Tensor

DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (rows, columns) per action


def moving_squares(clips: int, frames: int, seed: int, size: int = 8) -> dict[str, Tensor]:
    """{"videos": (clips, frames, 3, size, size) in [-1, 1], "actions": one-hot (clips, frames, 4)}."""
    generator = torch.Generator().manual_seed(seed)
    step = max(size // 8, 1)
    start = torch.randint(0, size, (clips, 2), generator=generator)
    actions = torch.randint(0, len(DIRECTIONS), (clips, frames), generator=generator)
    videos = torch.full((clips, frames, 3, size, size), -1.0)
    for c in range(clips):
        row, col = start[c].tolist()
        for t in range(frames):
            if t > 0:
                d_row, d_col = DIRECTIONS[actions[c, t]]
                row, col = (row + step * d_row) % size, (col + step * d_col) % size
            square = torch.zeros(size, size, dtype=torch.bool)
            square[: size // 4, : size // 4] = True
            videos[c, t, :, square.roll((row, col), dims=(0, 1))] = 1.0
    return {"videos": videos, "actions": torch.nn.functional.one_hot(actions, len(DIRECTIONS)).float()}
