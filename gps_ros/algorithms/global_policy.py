"""Glue between the local linear-Gaussian policies and the neural global policy (MDGPS, BADMM).

- Linearisation (MDGPS Sec. 3.1, App. B): the global policy's mean actions at a
  condition's sampled observations, regressed on the sampled states with a GMM policy
  prior, give π̄_i(u|x) = N(K̄ x + k̄, Σ^π) with Σ^π the global policy's covariance.
- S-step data (App. B.2): for every sample of every condition, the local policy's mean
  action at the sampled state and its precision C_ti⁻¹, next to the sample's observation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gps_ros.algorithms.local_models import (
    LocalModel, LocalModelSettings, check_initial_policies, check_sample_batches, cost_per_condition, fit_local_models,
)
from gps_ros.core.costs.base import Cost
from gps_ros.core.dynamics_fit import fit_linearized_policy
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorGMM, PolicyPriorConfig, PolicyPriorGMM
from gps_ros.core.samples import SampleBatch
from gps_ros.core.validation import check_array
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.sstep import SStep, SStepConfig


def mlp_global_policy(dO: int, dU: int, hidden_sizes: Sequence[int] = (40, 40), seed: int = 0) -> GaussianPolicy:
    """The papers' global policy: an MLP (default two hidden layers of 40 ReLUs) from obs [dO] to the mean action [dU]."""
    return GaussianPolicy(PolicyArchitecture("mlp", dO, dU, hidden_sizes=tuple(hidden_sizes)), seed=seed)


def local_mean_actions(policy: LinearGaussianPolicy, X: np.ndarray) -> np.ndarray:
    """Mean actions K_t x + k_t [N, T, dU] of a local policy at the sampled states X [N, T, dX]."""
    X = check_array("X", X, (None, policy.T, policy.dX))
    return np.einsum("tux,ntx->ntu", policy.K, X) + policy.k


def linearize_global_policy(
    global_policy: GaussianPolicy,
    samples: SampleBatch,
    prior: PolicyPriorGMM | None,
    regularization: float,
    update_prior: bool = True,
) -> tuple[LinearGaussianPolicy, np.ndarray]:
    """π̄ fitted around samples (with the prior updated by them first, when given and update_prior);
    also returns μ^π(obs) [N, T, dU]."""
    U_mean = global_policy.act_batch(samples.obs)
    if prior is not None and update_prior:
        prior.update(samples.X, U_mean)
    return fit_linearized_policy(samples.X, U_mean, global_policy.covariance, prior, regularization), U_mean


def check_s_step_history(value: int) -> None:
    """s_step_history: how many iterations' S-step data the network trains on, an integer >= 1."""
    if int(value) != value or value < 1:
        raise ValueError(f"s_step_history: expected an integer >= 1, got {value}")


class SStepHistory:
    """The S-step data (obs [N, T, dO], target_mu [N, T, dU], precision [N, T, dU, dU], and pose
    [N, T, pose_dim] or None) of the last ``iterations`` GPS iterations. Training on them together
    keeps the network from forgetting states that only earlier iterations' samples visited; 1 is
    the papers' S-step (current data only)."""

    def __init__(self, iterations: int = 1) -> None:
        check_s_step_history(iterations)
        self._past: deque[tuple[np.ndarray, ...]] = deque(maxlen=int(iterations) - 1)
        self._current: tuple[np.ndarray, ...] | None = None

    def update(self, s_step: SStep, obs: np.ndarray, target_mu: np.ndarray, precision: np.ndarray,
               pose: np.ndarray | None = None) -> float:
        """Train on this iteration's data together with the kept iterations'; a later call in the same
        iteration (new targets for the same samples) replaces this one's data. Returns the final loss."""
        self._current = (obs, target_mu, precision) if pose is None else (obs, target_mu, precision, pose)
        return s_step.update(*(np.concatenate(parts) for parts in zip(*self._past, self._current)))

    def end_iteration(self) -> None:
        """Keep the data of this iteration's last update for the next iterations."""
        if self._current is not None:
            self._past.append(self._current)
            self._current = None


def check_pose_slices(samples: SampleBatch, pose_state: Sequence[str]) -> None:
    """pose_state (SStepConfig's): every name must be a state slice of the samples."""
    missing = sorted(set(pose_state) - set(samples.state_slices))
    if missing:
        raise ValueError(f"pose_state: slices {missing} are not in the samples' state; have {sorted(samples.state_slices)}")


def pose_targets(samples: SampleBatch, pose_state: Sequence[str]) -> np.ndarray | None:
    """The pose head's targets [N, T, pose_dim]: the named state slices side by side (None: no names).
    The algorithms check the names with check_pose_slices before their iteration changes anything."""
    if not pose_state:
        return None
    return np.concatenate([samples.state(name) for name in pose_state], axis=2)


def s_step_update(
    s_step: SStep,
    samples_per_condition: Sequence[SampleBatch],
    target_mu: Sequence[np.ndarray],
    precision: Sequence[np.ndarray],
    history: SStepHistory | None = None,
) -> float:
    """One S-step on all conditions' samples: obs from samples.obs, target_mu[m] [N_m, T, dU],
    precision[m] [N_m, T, dU, dU] (or [T, dU, dU], shared by the condition's samples), the
    pose targets of s_step.config.pose_state, with the kept earlier iterations' data when a
    history is given. Returns the S-step's final loss."""
    obs = np.concatenate([s.obs for s in samples_per_condition])
    mu = np.concatenate(list(target_mu))
    prec = np.concatenate(
        [np.broadcast_to(p, (s.N, *p.shape[-3:])) for s, p in zip(samples_per_condition, precision)]
    )
    names = s_step.config.pose_state
    pose = np.concatenate([pose_targets(s, names) for s in samples_per_condition]) if names else None
    return (history or SStepHistory()).update(s_step, obs, mu, prec, pose)


@dataclass(frozen=True)
class PhaseTimes:
    """Wall time of one GPS iteration's phases (s): fitting the dynamics and linearising the
    global policy, the C-step (all conditions), the S-step."""

    linearization_s: float
    c_step_s: float
    s_step_s: float


@dataclass(frozen=True)
class GPSIterationResult:
    """iteration: 1-based count; conditions: per-condition reports; s_step_loss: the S-step's
    final loss summed over all (t, i, j); times: wall time of the phases."""

    iteration: int
    conditions: list[Any]
    s_step_loss: float
    times: PhaseTimes

    @property
    def mean_sample_cost(self) -> float:
        return float(np.mean([c.sample_cost for c in self.conditions]))

    @property
    def degenerate_c_steps(self) -> int:
        """How many conditions kept their previous local policy because the C-step was degenerate."""
        return sum(bool(getattr(c, "c_step_degenerate", False)) for c in self.conditions)


def check_global_policy(global_policy: GaussianPolicy, dU: int) -> None:
    """global_policy must be a GaussianPolicy acting in the local policies' action space."""
    if not isinstance(global_policy, GaussianPolicy) or global_policy.dU != dU:
        got = f"dU={global_policy.dU}" if isinstance(global_policy, GaussianPolicy) else type(global_policy).__name__
        raise ValueError(f"global_policy: expected a GaussianPolicy with dU={dU}, got {got}")


def check_observations(samples_per_condition: Sequence[SampleBatch], dO: int) -> None:
    """Every batch's obs must have the global policy's dO entries."""
    for m, s in enumerate(samples_per_condition):
        if s.dO != dO:
            raise ValueError(f"samples_per_condition[{m}].obs: expected dO={dO} (the global policy's input), got {s.dO}")


@dataclass(frozen=True)
class GlobalPolicySettings(LocalModelSettings):
    """What the configs of MDGPS and BADMM add to the local models' settings: policy_prior (GMM
    prior of the global policy's linearisation; None: plain ridge regression), the ridge terms
    dynamics_regularization and policy_regularization of the fits, and s_step (network training)."""

    policy_prior: PolicyPriorConfig | None = field(default_factory=PolicyPriorConfig)
    dynamics_regularization: float = 1e-6
    policy_regularization: float = 1e-6
    s_step: SStepConfig = field(default_factory=SStepConfig)


class LocalGlobalSearch:
    """What MDGPS and BADMM share: M conditions, each with a cost and one local linear-Gaussian
    policy (``_conditions[m].policy``, set by the subclass), and one neural global policy trained
    by the S-step. Subclasses implement ``sampling_policies`` and ``iteration``."""

    _conditions: list[Any]

    def __init__(
        self,
        config: GlobalPolicySettings,
        costs: Cost | Sequence[Cost],
        initial_policies: Sequence[LinearGaussianPolicy],
        global_policy: GaussianPolicy,
    ) -> None:
        check_initial_policies(initial_policies)
        check_global_policy(global_policy, initial_policies[0].dU)
        self.costs = cost_per_condition(costs, len(initial_policies))
        self.config = config
        self.global_policy = global_policy
        self.s_step = SStep(global_policy, config.s_step)
        self.iteration_count = 0

    @property
    def local_policies(self) -> list[LinearGaussianPolicy]:
        return [c.policy for c in self._conditions]

    def _new_priors(self) -> tuple[DynamicsPriorGMM | None, PolicyPriorGMM | None]:
        """One condition's fresh dynamics and policy priors (None where the config has none)."""
        cfg = self.config
        return (None if cfg.dynamics_prior is None else DynamicsPriorGMM(cfg.dynamics_prior),
                None if cfg.policy_prior is None else PolicyPriorGMM(cfg.policy_prior))

    def _fit_local_models(self, samples_per_condition: Sequence[SampleBatch]) -> list[LocalModel]:
        """Check the batches against the local policies' sizes and the global policy's input,
        then fit every condition's dynamics, initial state and cost expansion."""
        T, dU, dX = self._conditions[0].policy.K.shape
        check_sample_batches(samples_per_condition, len(self._conditions), T, dX, dU)
        check_observations(samples_per_condition, self.global_policy.dO)
        for samples in samples_per_condition:
            check_pose_slices(samples, self.config.s_step.pose_state)
        cfg = self.config
        return fit_local_models(self.costs, samples_per_condition, [c.dynamics_prior for c in self._conditions],
                                cfg.dynamics_regularization, cfg.initial_state_floor)
