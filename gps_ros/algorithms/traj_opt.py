"""traj_opt: local linear-Gaussian policies improved by KL-constrained LQR under fitted dynamics.

Per iteration and condition (Levine & Abbeel 2014; MDGPS Sec. 2.1, 4.2): refit the
dynamics with the GMM prior, average the cost expansion over the samples, adjust the
step size from predicted vs actual improvement, then run the C-step against the local
policy that produced the samples with ε = kl_step · T · step multiplier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gps_ros.algorithms.local_models import (
    LocalModel, LocalModelSettings, check_initial_policies, check_sample_batches, cost_per_condition, fit_local_models,
)
from gps_ros.core.costs.base import Cost
from gps_ros.core.kl_lqr import kl_constrained_lqr
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorGMM
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import new_step_multiplier
from gps_ros.core.traj_distribution import expected_cost


@dataclass(frozen=True)
class TrajOptConfig(LocalModelSettings):
    """LocalModelSettings (kl_step 0.2) and dynamics_regularization: ridge on the [x; u]
    covariance."""

    kl_step: float = 0.2
    dynamics_regularization: float = 1e-6


@dataclass(frozen=True)
class ConditionReport:
    """One condition's iteration: sample_cost (mean total cost of the samples), expected_cost
    (ℓ^k_k: the sampled policy under the new fit), predicted_cost (ℓ^{k+1}_k: the new policy
    under the new fit), step_mult and epsilon used, and the C-step's eta, kl, backward_passes,
    eta_raised."""

    sample_cost: float
    expected_cost: float
    predicted_cost: float
    step_mult: float
    epsilon: float
    eta: float
    kl: float
    backward_passes: int
    eta_raised: bool


@dataclass(frozen=True)
class IterationResult:
    iteration: int
    conditions: list[ConditionReport]

    @property
    def mean_sample_cost(self) -> float:
        return float(np.mean([c.sample_cost for c in self.conditions]))


@dataclass
class _ConditionState:
    policy: LinearGaussianPolicy
    prior: DynamicsPriorGMM | None
    step_mult: float
    eta: float | None = None
    previous_cost: float | None = None  # ℓ^{k−1}_{k−1}
    predicted_cost: float | None = None  # ℓ^k_{k−1}


class TrajOpt:
    """M conditions, one local policy each; ``iteration`` takes the samples drawn from ``local_policies``."""

    def __init__(
        self,
        config: TrajOptConfig,
        costs: Cost | Sequence[Cost],
        initial_policies: Sequence[LinearGaussianPolicy],
    ) -> None:
        check_initial_policies(initial_policies)
        M = len(initial_policies)
        cost_list = cost_per_condition(costs, M)
        self.config = config
        self.costs = cost_list
        self.iteration_count = 0
        self._conditions = [
            _ConditionState(
                p, None if config.dynamics_prior is None else DynamicsPriorGMM(config.dynamics_prior), config.initial_step_mult
            )
            for p in initial_policies
        ]

    @property
    def local_policies(self) -> list[LinearGaussianPolicy]:
        return [c.policy for c in self._conditions]

    def iteration(self, samples_per_condition: Sequence[SampleBatch]) -> IterationResult:
        """One iteration from samples_per_condition[m]: SampleBatch drawn from local_policies[m]."""
        self._check_samples(samples_per_condition)
        cfg = self.config
        models = fit_local_models(self.costs, samples_per_condition, [c.prior for c in self._conditions],
                                  cfg.dynamics_regularization, cfg.initial_state_floor)
        reports = [self._update_condition(state, model) for state, model in zip(self._conditions, models)]
        self.iteration_count += 1
        return IterationResult(self.iteration_count, reports)

    def _check_samples(self, samples_per_condition: Sequence[SampleBatch]) -> None:
        T, dU, dX = self._conditions[0].policy.K.shape
        check_sample_batches(samples_per_condition, len(self._conditions), T, dX, dU)

    def _update_condition(self, state: _ConditionState, model: LocalModel) -> ConditionReport:
        cfg = self.config
        current_cost = model.policy_cost(state.policy)
        if state.previous_cost is not None:
            state.step_mult = new_step_multiplier(
                state.step_mult, state.previous_cost, state.predicted_cost, current_cost, cfg.step_size
            )
        epsilon = cfg.kl_step * state.policy.T * state.step_mult
        result = kl_constrained_lqr(model.dynamics, model.x1, model.cost, state.policy, epsilon, cfg.c_step, eta_start=state.eta)
        predicted = float(expected_cost(result.traj, model.cost).sum())
        state.policy, state.eta = result.policy, result.eta
        state.previous_cost, state.predicted_cost = current_cost, predicted
        return ConditionReport(
            model.sample_cost, current_cost, predicted, state.step_mult, epsilon,
            result.eta, result.kl, result.backward_passes, result.eta_raised,
        )

