"""Scoring maze2d policies on a fixed list of episodes: the planner, D4RL's expert and a random policy all go
through `run_episodes`, so their numbers mean the same thing.

Metrics per episode (D4RL's sparse reward r_t = 1 within 0.5 of the goal), averaged over episodes:
    episode_reward          Σ_t r_t over `episode_len` steps (what D4RL normalises)
    first_reach             steps before r_t first equals 1 (`episode_len` if never)
    episode_reward_if_stay  rewards before the first reach, then 1 for every remaining step (DF v1.5)
    success                 1 if the goal was reached at all
    normalized_score        100·(R − min)/(max − min) with D4RL's maze2d-*-v1 constants
    normalized_score_protocol  the same with this protocol's own min/max: the mean returns of a uniform random
                            policy and of the expert on these very episodes (how D4RL made its constants)
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from datasets.maze2d.environment import MazeEnvironment, make_environment, maze_of
from datasets.maze2d.mazes import Cell, Maze
from datasets.maze2d.waypoint_controller import D_GAIN, P_GAIN, WaypointController

DT = 0.01  # the simulators' timestep: D4RL velocities are units per second


class Policy(Protocol):
    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        """A new batch of episodes starts in `states` (B, 4) with targets `goals` (B, 2)."""

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        """Actions (B, 2) in D4RL's frame for the current states (B, 4) at `step`."""


@dataclass
class EpisodeBatch:
    """What happened in a batch of episodes; `plans` holds (step, planned frames (B, H, C)) of every replan."""

    maze: Maze
    start_cells: list[Cell]
    goals: np.ndarray  # (B, 2)
    states: np.ndarray  # (B, L + 1, 4)
    rewards: np.ndarray  # (B, L)
    plans: list[tuple[int, np.ndarray]] = field(default_factory=list)


class ExpertPolicy:
    """D4RL's waypoint controller per episode (no jitter): the `max` of the normalised score."""

    def __init__(self, maze: Maze) -> None:
        self.maze = maze

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        self.goals = goals
        self.controllers = [WaypointController(self.maze) for _ in goals]

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        return np.stack([c.act(s, g)[0] for c, s, g in zip(self.controllers, states, self.goals, strict=True)])


class RandomPolicy:
    """Uniform actions in [-1, 1]: the `min` of the normalised score."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        """Nothing to prepare: each action is independent of the state."""

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, size=(len(states), 2))


class PlannerPolicy:
    """MPC with a planner: replan every `open_loop_horizon` steps for the remaining steps, execute in between.

    Planned actions are executed when the planner models them; otherwise a PD controller tracks the planned
    positions (and planned velocities, or their finite differences when only positions are modelled).
    """

    def __init__(self, planner: "PlanningModule", episode_len: int, open_loop_horizon: int, seed: int) -> None:
        self.planner = planner
        self.episode_len = episode_len
        self.open_loop_horizon = open_loop_horizon
        self.seed = seed
        self.plans: list[tuple[int, np.ndarray]] = []

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        self.goals = goals
        self.plans = []
        device = self.planner.device
        self.generator = torch.Generator(device).manual_seed(self.seed)

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        if step % self.open_loop_horizon == 0:
            device = self.planner.device
            plan = self.planner.plan(
                torch.as_tensor(states, dtype=torch.float32, device=device),
                torch.as_tensor(self.goals, dtype=torch.float32, device=device),
                self.episode_len - step,
                self.generator,
            )
            self.plans.append((step, plan.cpu().numpy()))
            self.plan_start = states[:, :2].copy()
        start_step, plan = self.plans[-1]
        j = step - start_step
        observed = len(self.planner.config.observation_mean)
        if self.planner.config.action_mean:
            return np.clip(plan[:, j, observed : observed + 2], -1.0, 1.0)
        target = plan[:, j, :2]
        if observed == 4:
            target_velocity = plan[:, j, 2:4]
        else:
            previous = plan[:, j - 1, :2] if j > 0 else self.plan_start
            target_velocity = (target - previous) / DT
        return track(target, target_velocity, states)


def track(target: np.ndarray, target_velocity: np.ndarray, states: np.ndarray) -> np.ndarray:
    """PD action toward a planned position and velocity, with D4RL's controller gains."""
    return np.clip(P_GAIN * (target - states[:, :2]) - D_GAIN * (target_velocity - states[:, 2:4]), -1.0, 1.0)


class PlanningModule(Protocol):
    config: object
    device: torch.device

    def plan(self, states: torch.Tensor, goal: torch.Tensor, horizon: int, generator: torch.Generator) -> torch.Tensor:
        """Unnormalised planned frames (B, horizon, C)."""


class EpisodeRunner:
    """Runs batches of evaluation episodes in a pool of environments (one per episode of a batch)."""

    def __init__(self, env_id: str, episode_len: int) -> None:
        self.env_id = env_id
        self.maze = maze_of(env_id)
        self.episode_len = episode_len
        self.environments: list[MazeEnvironment] = []

    def run(
        self, policy: Policy, start_cells: Sequence[Cell], goal_cells: Sequence[Cell], seeds: Sequence[int]
    ) -> EpisodeBatch:
        while len(self.environments) < len(start_cells):
            self.environments.append(make_environment(self.env_id))
        environments = self.environments[: len(start_cells)]
        goals = np.array(goal_cells, dtype=float)
        states = np.stack(
            [
                env.reset(tuple(cell), goal, np.random.default_rng(seed))
                for env, cell, goal, seed in zip(environments, start_cells, goals, seeds, strict=True)
            ]
        )
        history, rewards = [states], []
        policy.begin(states, goals)
        for step in range(self.episode_len):
            actions = policy.act(states, step)
            results = [env.step(a) for env, a in zip(environments, actions, strict=True)]
            states = np.stack([s for s, _ in results])
            history.append(states)
            rewards.append([r for _, r in results])
        return EpisodeBatch(
            self.maze,
            [tuple(c) for c in start_cells],
            goals,
            np.stack(history, axis=1),
            np.asarray(rewards, dtype=float).T,
            list(getattr(policy, "plans", [])),
        )

    def close(self) -> None:
        for env in self.environments:
            env.close()
        self.environments = []


_REFERENCE_RETURNS: dict[tuple, tuple[float, float]] = {}


def reference_returns(
    runner: EpisodeRunner, start_cells: Sequence[Cell], goal_cells: Sequence[Cell], seeds: Sequence[int]
) -> tuple[float, float]:
    """Mean returns of the random policy and of the expert on these episodes (computed once per process)."""
    key = (
        runner.env_id,
        runner.episode_len,
        tuple(map(tuple, start_cells)),
        tuple(map(tuple, goal_cells)),
        tuple(seeds),
    )
    if key not in _REFERENCE_RETURNS:
        random = runner.run(RandomPolicy(int(seeds[0])), start_cells, goal_cells, seeds).rewards.sum(axis=1).mean()
        expert = runner.run(ExpertPolicy(runner.maze), start_cells, goal_cells, seeds).rewards.sum(axis=1).mean()
        _REFERENCE_RETURNS[key] = (float(random), float(expert))
    return _REFERENCE_RETURNS[key]


def episode_metrics(rewards: np.ndarray) -> dict[str, np.ndarray]:
    """Per-episode metrics (B,) from rewards (B, L); see the module docstring."""
    length = rewards.shape[1]
    reached = rewards >= 1
    ever = reached.any(axis=1)
    first = np.where(ever, reached.argmax(axis=1), length)
    before = np.where(np.arange(length)[None] < first[:, None], rewards, 0.0).sum(axis=1)
    return {
        "episode_reward": rewards.sum(axis=1),
        "first_reach": first.astype(float),
        "episode_reward_if_stay": before + (length - first),
        "success": ever.astype(float),
    }


def normalized_score(episode_reward: np.ndarray | float, minimum: float, maximum: float) -> np.ndarray:
    """100·(R − min)/(max − min): 0 is the random policy, 100 the expert (D4RL)."""
    return 100.0 * (np.asarray(episode_reward) - minimum) / (maximum - minimum)
