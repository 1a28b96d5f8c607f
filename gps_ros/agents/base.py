"""The agent interface: where samples come from (MuJoCo in-process, or a robot via ROS)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from gps_ros.core.samples import SampleBatch
from gps_ros.policies.base import Policy


class Agent(ABC):
    """Runs policies for T steps from a condition and records the trials.

    condition: an index of the task's fixed conditions, a condition object of the
    implementation, or None for a random condition drawn from ``seed`` (reset-free
    training). noise: [T, dU] standard-normal exploration noise (None: drawn from
    ``seed`` with the agent's noise settings; pass zeros for the mean actions).
    Same seed, same condition, same policy -> the same sample.
    """

    T: int
    dX: int
    dU: int
    dO: int

    @abstractmethod
    def sample(
        self,
        policy: Policy,
        condition: object = None,
        noise: np.ndarray | None = None,
        seed: int | None = None,
        with_images: bool = False,
    ) -> SampleBatch:
        """One trial as a batch of N = 1."""

    @abstractmethod
    def sample_many(
        self,
        policies: Policy | Sequence[Policy],
        conditions: Sequence[object],
        noise: np.ndarray | None = None,
        seed: int | None = None,
        with_images: bool = False,
    ) -> SampleBatch:
        """One trial per entry of ``conditions`` (policies: one for all or one per entry);
        noise: [N, T, dU] or None; per-trial seeds are spawned from ``seed``."""


def named_policies(policies: object, conditions: Sequence) -> list[tuple[object, str]]:
    """(policy, field name) for each of the N conditions of ``sample_many``: ``policies`` is
    one policy for all or a sequence of N. ValueError for no conditions or a wrong count."""
    N = len(conditions)
    if N < 1:
        raise ValueError("conditions: expected at least one condition, got none")
    if isinstance(policies, Sequence):
        if len(policies) != N:
            raise ValueError(f"policies: expected one policy or {N} (one per condition), got {len(policies)}")
        return [(p, f"policies[{i}]") for i, p in enumerate(policies)]
    return [(policies, "policies")] * N
