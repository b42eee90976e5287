"""Generate a maze2d dataset the way D4RL did: one long trajectory of the waypoint controller chasing random
targets (a new one whenever the current one is reached or `max_episode_steps` pass), written in D4RL's hdf5 layout.

Differences from D4RL's script, on purpose: the recorded state after a target switch is the state the simulator
is in (D4RL's script records the pre-step state twice there), and everything is seeded.
"""

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.maze2d.environment import MazeEnvironment, sparse_reward, start_state
from datasets.maze2d.hdf5 import write_hdf5
from datasets.maze2d.waypoint_controller import D4RL_WAYPOINT_JITTER, WaypointController


def random_target(env: MazeEnvironment, rng: np.random.Generator) -> np.ndarray:
    cells = env.maze.free_cells
    return np.array(cells[rng.integers(len(cells))], dtype=float) + rng.uniform(-0.1, 0.1, size=2)


def generate(env: MazeEnvironment, steps: int, seed: int, action_noise: float = 0.0) -> dict[str, np.ndarray]:
    """`steps` transitions of D4RL's recipe; `action_noise` is the std of D4RL's `--noisy` Gaussian (0.5 there)."""
    rng = np.random.default_rng(seed)
    maze = env.maze
    controller = WaypointController(maze, rng, D4RL_WAYPOINT_JITTER)
    cells = maze.free_cells
    state = env.reset(start_state(cells[rng.integers(len(cells))], rng), random_target(env, rng))
    columns: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "terminals", "timeouts", "goal")}
    since_target = 0
    with tqdm(total=steps, desc=f"generating maze2d-{maze.name}", unit="step", mininterval=1.0) as bar:
        for step in range(steps):
            action, reached = controller.act(state, env.goal)
            action = np.clip(action + rng.normal(0.0, action_noise, size=2), -1.0, 1.0) if action_noise else action
            timeout = since_target >= maze.max_episode_steps
            for key, value in zip(
                columns,
                (state, action, sparse_reward(state, env.goal), reached, timeout, env.goal),
                strict=True,
            ):
                columns[key].append(value)
            state, _ = env.step(action)
            since_target += 1
            if reached or timeout:
                env.set_goal(random_target(env, rng))
                since_target = 0
            if step % 1000 == 999:
                bar.update(1000)
        bar.update(steps - bar.n)
    data = {key: np.asarray(values) for key, values in columns.items() if key != "goal"}
    data["infos/goal"] = np.asarray(columns["goal"])
    return data


def statistics(data: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Per-dimension mean and std of observations and actions (what `dataset.observation_mean` etc. take)."""
    obs, act = data["observations"], data["actions"]
    return {
        "observation_mean": obs.mean(0).tolist(),
        "observation_std": obs.std(0).tolist(),
        "action_mean": act.mean(0).tolist(),
        "action_std": act.std(0).tolist(),
    }


def generate_file(env: MazeEnvironment, path: Path, steps: int, seed: int, action_noise: float = 0.0) -> Path:
    """Write `path` (D4RL's hdf5 layout) and `<path>.stats.json`; the file appears only once complete."""
    data = generate(env, steps, seed, action_noise)
    stats = statistics(data)
    write_hdf5(path, data, {"generator": "waypoint controller", "seed": seed, "maze": env.maze.name, **stats})
    path.with_name(path.name + ".stats.json").write_text(json.dumps(stats, indent=2))
    return path
