"""Scoring maze2d policies on a fixed list of episodes: the planner, D4RL's expert and a random policy all go
through `EpisodeRunner`, so their numbers mean the same thing.

Metrics per episode (D4RL's sparse reward r_t = 1 within 0.5 of the goal), averaged over episodes:
    episode_reward          Σ_t r_t over `episode_len` steps (what D4RL normalises)
    first_reach             steps before r_t first equals 1 (`episode_len` if never)
    episode_reward_if_stay  rewards before the first reach, then 1 for every remaining step (DF v1.5)
    success                 1 if the goal was reached at all
    normalized_score        100·(R − min)/(max − min) with D4RL's maze2d-*-v1 constants
    normalized_score_protocol  the same with this protocol's own min/max: the mean returns of a uniform random
                            policy and of the expert on these very episodes

D4RL made its constants with two scripts, reproduced by `d4rl_reference_returns`: 100 episodes from
`env.seed(0)`, a uniform random policy for `REF_MIN`, and for `REF_MAX` its waypoint controller — one object for all
100 episodes. That controller plans a path only when the target changes, and the target never does, so from the
second episode on it steers straight at the goal and slides along walls: `REF_MAX` is far below a real expert's
return (`ExpertPolicy`, a controller per episode), and good planners score well above 100.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from datasets.maze2d.environment import MazeEnvironment, make_environment, maze_of
from datasets.maze2d.legacy_gym_seeding import legacy_gym_random_state
from datasets.maze2d.mazes import Cell, Maze
from datasets.maze2d.waypoint_controller import D4RL_WAYPOINT_JITTER, D_GAIN, P_GAIN, WaypointController

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
    """D4RL's waypoint controller, a fresh one per episode (no jitter): an expert that plans every episode."""

    def __init__(self, maze: Maze) -> None:
        self.maze = maze

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        self.goals = goals
        self.controllers = [WaypointController(self.maze) for _ in goals]

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        return np.stack([c.act(s, g)[0] for c, s, g in zip(self.controllers, states, self.goals, strict=True)])


class D4rlScriptExpert:
    """The expert of D4RL's `maze2d_controller.py`: one jittered waypoint controller (global `np.random.seed(0)`)
    kept across episodes run one at a time, so it plans once, for the first target it sees."""

    def __init__(self, maze: Maze, seed: int = 0) -> None:
        self.controller = WaypointController(maze, np.random.RandomState(seed), D4RL_WAYPOINT_JITTER)

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        if len(states) != 1:
            raise ValueError("D4RL's script expert runs its episodes one at a time (batches of 1)")
        self.goal = goals[0]

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        return self.controller.act(states[0], self.goal)[0][None]


class RandomPolicy:
    """Uniform actions in [-1, 1] (float32, as gym's Box samples them): the `min` of the normalised score."""

    def __init__(self, rng: np.random.Generator | np.random.RandomState) -> None:
        self.rng = rng

    def begin(self, states: np.ndarray, goals: np.ndarray) -> None:
        """Nothing to prepare: each action is independent of the state."""

    def act(self, states: np.ndarray, step: int) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, size=(len(states), 2)).astype(np.float32)


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
        self,
        policy: Policy,
        start_states: np.ndarray,
        goal_cells: Sequence[Cell],
        start_cells: Sequence[Cell],
        progress: bool = False,
    ) -> EpisodeBatch:
        """Episodes from `start_states` (B, 4) toward the centres of `goal_cells`; `start_cells` name them.
        `progress` shows a bar over the episodes' steps (a planner's batch takes minutes on a CPU)."""
        while len(self.environments) < len(start_states):
            self.environments.append(make_environment(self.env_id))
        environments = self.environments[: len(start_states)]
        goals = np.array(goal_cells, dtype=float)
        states = np.stack([env.reset(s, g) for env, s, g in zip(environments, start_states, goals, strict=True)])
        history, rewards = [states], []
        policy.begin(states, goals)
        description = f"{len(start_states)} episodes"
        for step in tqdm(range(self.episode_len), desc=description, unit="step", disable=not progress, leave=False):
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


def d4rl_reference_returns(
    runner: EpisodeRunner, start_states: np.ndarray, goal_cells: Sequence[Cell], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode returns (random, expert) of D4RL's two reference scripts, episode after episode in order.

    The random policy draws from `action_space.seed(seed)`'s stream, the expert is `D4rlScriptExpert`; on the
    d4rl protocol's 100 episodes their means are this simulator's `REF_MIN` and `REF_MAX`.
    """
    random_policy, expert = RandomPolicy(legacy_gym_random_state(seed)), D4rlScriptExpert(runner.maze)
    returns: dict[str, list[float]] = {"random": [], "expert": []}
    for start, goal in zip(start_states, goal_cells, strict=True):
        for name, policy in (("random", random_policy), ("expert", expert)):
            batch = runner.run(policy, start[None], [goal], [runner.maze.cell_of(start)])
            returns[name].append(float(batch.rewards.sum()))
    return np.array(returns["random"]), np.array(returns["expert"])


_REFERENCE_RETURNS: dict[tuple, tuple[float, float]] = {}


def reference_returns(
    runner: EpisodeRunner, start_states: np.ndarray, goal_cells: Sequence[Cell], protocol: str, seed: int
) -> tuple[float, float]:
    """Mean returns (random, expert) on these episodes, computed once per process: D4RL's reference scripts on
    the d4rl protocol, else a seeded random policy and `ExpertPolicy`."""
    start_states = np.asarray(start_states, dtype=float)
    key = (runner.env_id, runner.episode_len, start_states.tobytes(), tuple(map(tuple, goal_cells)), protocol, seed)
    if key not in _REFERENCE_RETURNS:
        if protocol == "d4rl":
            random, expert = d4rl_reference_returns(runner, start_states, goal_cells, seed)
        else:
            cells = [runner.maze.cell_of(s) for s in start_states]
            random_policy = RandomPolicy(np.random.default_rng(seed))
            random = runner.run(random_policy, start_states, goal_cells, cells).rewards.sum(axis=1)
            expert = runner.run(ExpertPolicy(runner.maze), start_states, goal_cells, cells).rewards.sum(axis=1)
        _REFERENCE_RETURNS[key] = (float(random.mean()), float(expert.mean()))
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
