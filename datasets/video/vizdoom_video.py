"""`dataset=video_vizdoom`: a DMLab-like first-person maze, episodes generated here from ViZDoom's bundled scenarios.

ViZDoom (Kempka et al. 2016) runs Doom headless; its `my_way_home` scenario is a maze of corridors and rooms
seen in first person, like TECO's DMLab. Three actions as in DMLab — 0 forward, 1 turn left, 2 turn right — are
held for geometric durations (mostly forward) and each lasts `TICS_PER_FRAME` game tics. The 160×120 screen is
centre-cropped to a square and resized to `render_size`. An episode that ends early (the agent found the goal
or the scenario timed out) is regenerated from the next seed, so every episode has `episode_length` frames.
"""

import os
from functools import partial

import numpy as np
from PIL import Image

from .simulated_episodes import SimulatedVideoDataset, first_full_length

VIZDOOM_ACTIONS = 3
TICS_PER_FRAME = 4
# Buttons of my_way_home.cfg: TURN_LEFT, TURN_RIGHT, MOVE_FORWARD, MOVE_LEFT, MOVE_RIGHT.
BUTTONS = {0: [0, 0, 1, 0, 0], 1: [1, 0, 0, 0, 0], 2: [0, 1, 0, 0, 0]}


def persistent_actions(rng: np.random.Generator, length: int, hold: float) -> np.ndarray:
    """Actions held for geometric durations: 60% forward, 20% each turn; action 0 before the first frame."""
    actions = np.zeros(length, dtype=np.int64)
    current = 0
    for t in range(1, length):
        if rng.random() < 1 / hold:
            current = int(rng.choice(VIZDOOM_ACTIONS, p=[0.6, 0.2, 0.2]))
        actions[t] = current
    return actions


def square_frame(screen: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) screen → centre square crop resized to (size, size, 3) uint8."""
    height, width = screen.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = Image.fromarray(screen[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))


def new_game(seed: int, length: int) -> "vizdoom.DoomGame":  # noqa: F821 (imported where it runs)
    """A headless my_way_home game at 160×120 RGB, long enough for `length` frames; imported in the worker."""
    import vizdoom as vzd

    game = vzd.DoomGame()
    game.load_config(os.path.join(vzd.scenarios_path, "my_way_home.cfg"))
    game.set_window_visible(False)
    game.set_mode(vzd.Mode.PLAYER)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_episode_timeout(10 + TICS_PER_FRAME * (length + 1))
    game.set_sound_enabled(False)
    game.set_seed(seed)
    game.init()
    return game


def rollout(episode_seed: int, length: int, size: int, hold: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames until the scenario ends or `length` is reached, and the actions drawn for it."""
    actions = persistent_actions(np.random.default_rng(episode_seed), length, hold)
    game = new_game(episode_seed, length)
    try:
        game.new_episode()
        frames = [square_frame(game.get_state().screen_buffer, size)]
        for action in actions[1:]:
            game.make_action(BUTTONS[int(action)], TICS_PER_FRAME)
            if game.is_episode_finished():
                break
            frames.append(square_frame(game.get_state().screen_buffer, size))
    finally:
        game.close()
    return frames, actions


def generate_episode(seed: int, length: int, size: int, hold: float) -> tuple[np.ndarray, np.ndarray]:
    """One full-length episode (video (L, size, size, 3) uint8, actions (L,)), deterministic in `seed`."""
    return first_full_length(seed, length, partial(rollout, length=length, size=size, hold=hold), "vizdoom")


class VizdoomVideoDataset(SimulatedVideoDataset):
    simulator_name = "vizdoom"
    generate_episode = staticmethod(generate_episode)
