"""Evaluating a policy: final distance to the target and success rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gps_ros.agents.mujoco_agent import MujocoAgent
from gps_ros.policies.base import Policy
from gps_ros.sim.task import Condition


@dataclass(frozen=True)
class Evaluation:
    """final_distance: [n] distance of the success point to the target at the last step;
    success: [n] whether it is within the task's threshold; conditions: the n conditions."""

    final_distance: np.ndarray
    success: np.ndarray
    conditions: list[Condition]

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.success))

    @property
    def mean_final_distance(self) -> float:
        return float(np.mean(self.final_distance))


def evaluate(
    agent: MujocoAgent,
    policy: Policy,
    conditions: Sequence[int | Condition] | None = None,
    n_random: int = 0,
    seed: int | None = None,
    explore: bool = False,
) -> Evaluation:
    """Run ``policy`` once per condition (default: all fixed conditions when n_random is
    0) plus n_random test placements drawn from ``seed``; mean actions unless explore."""
    if n_random < 0:
        raise ValueError(f"n_random: expected a count >= 0, got {n_random}")
    if conditions is None:
        conditions = [] if n_random else list(range(len(agent.task.conditions)))
    rng = np.random.default_rng(seed)
    chosen = [agent.task.condition(c) for c in conditions] + [agent.task.random_condition(rng) for _ in range(n_random)]
    if not chosen:
        raise ValueError("conditions, n_random: expected at least one condition to evaluate, got none")
    noise = None if explore else np.zeros((len(chosen), agent.T, agent.dU))
    samples = agent.sample_many(policy, chosen, noise=noise, seed=seed)
    return Evaluation(agent.task.final_distance(samples.X), agent.task.success(samples.X), chosen)
