"""Small tasks that a working Diffusion Forcing model learns in seconds on CPU, for the learning tests.

`moving_squares`: a white square on black moves 2 pixels per frame in the direction of its one-hot action
(wrapping around), so the next frame is fully determined by the last one and the action. Copying the last frame
is wrong by the motion; a model that ignores its context cannot know where the square is.
"""

import torch
from torch import Tensor

SIZE, SQUARE, STEP = 16, 4, 2
DIRECTIONS = ((0, STEP), (0, -STEP), (STEP, 0), (-STEP, 0))  # (rows, columns) per action


def moving_squares(clips: int, frames: int, seed: int) -> dict[str, Tensor]:
    """{"videos": (clips, frames, 3, SIZE, SIZE) in [-1, 1], "actions": one-hot (clips, frames, 4)}."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randint(0, SIZE, (clips, 2), generator=generator)
    actions = torch.randint(0, len(DIRECTIONS), (clips, frames), generator=generator)
    videos = torch.full((clips, frames, 3, SIZE, SIZE), -1.0)
    for c in range(clips):
        row, col = start[c].tolist()
        for t in range(frames):
            if t > 0:
                d_row, d_col = DIRECTIONS[actions[c, t]]
                row, col = (row + d_row) % SIZE, (col + d_col) % SIZE
            square = torch.zeros(SIZE, SIZE, dtype=torch.bool)
            square[:SQUARE, :SQUARE] = True
            videos[c, t, :, square.roll((row, col), dims=(0, 1))] = 1.0
    return {"videos": videos, "actions": torch.nn.functional.one_hot(actions, len(DIRECTIONS)).float()}
