"""The policy interface every agent runs: ``act(x, obs, t, noise) -> u``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from gps_ros.core.linear_gaussian import LinearGaussianPolicy


@runtime_checkable
class Policy(Protocol):
    """Anything an agent can run for one trial.

    x: [dX] full state (local policies use it); obs: [dO] the observation (global
    policies use it; for image tasks the flattened image is part of obs, see the
    agent's obs_slices); t: step index in [0, T); noise: [dU] standard-normal
    exploration noise for this step. Returns u: [dU].
    """

    def act(self, x: np.ndarray, obs: np.ndarray, t: int, noise: np.ndarray | None) -> np.ndarray: ...


class LinearGaussianActor:
    """Runs a LinearGaussianPolicy (which acts on the state only) as a Policy.

    Agents call act once per control step on states they assembled themselves, so it
    skips the per-call checks (the policy's arrays were checked on construction).
    """

    def __init__(self, policy: LinearGaussianPolicy) -> None:
        if not isinstance(policy, LinearGaussianPolicy):
            raise ValueError(f"policy: expected a LinearGaussianPolicy, got {type(policy).__name__}")
        self.policy = policy

    def act(self, x: np.ndarray, obs: np.ndarray, t: int, noise: np.ndarray | None) -> np.ndarray:
        return self.policy.act_unchecked(x, t, noise)


def as_policy(policy: object) -> Policy:
    """The Policy to run for ``policy``: a LinearGaussianPolicy is wrapped, a Policy passes through."""
    if isinstance(policy, LinearGaussianPolicy):
        return LinearGaussianActor(policy)
    if not isinstance(policy, Policy):
        raise ValueError(f"policy: expected a Policy (with act(x, obs, t, noise)) or a LinearGaussianPolicy, got {type(policy).__name__}")
    return policy
