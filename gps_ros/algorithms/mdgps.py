"""Mirror descent guided policy search (Montgomery & Levine 2016, Algorithm 4, App. B).

Per iteration, for each condition i: fit the dynamics (GMM prior) to the samples,
linearise the global policy around them (π̄_i, GMM policy prior, covariance Σ^π), adjust
the step size, and run the C-step: the KL-constrained LQR of the true cost against π̄_i
with ε = kl_step · T · step multiplier. Then one S-step fits the neural global policy to
all new local policies at all sampled states. The samples come either from the local
policies ("off_policy") or from the global policy ("on_policy"); the first iteration
always samples the initial local policies, and the global policy is first fitted to
those ("caught up") before it is linearised.

Step size (Sec. 4.2, App. B.3), with ℓ^a_b the expected cost of policy a under the fit of
iteration b and π̄ the linearised global policy:
  classic: multiplier' = multiplier (ℓ^k_{k−1} − ℓ^{k−1,π}_{k−1}) / 2(ℓ^k_{k−1} − ℓ^k_k)
  global:  the same with the new global policy's ℓ^{k,π}_k in place of ℓ^k_k.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gps_ros.algorithms.global_policy import (
    GlobalPolicySettings, GPSIterationResult, LocalGlobalSearch, PhaseTimes, SStepHistory, check_s_step_history,
    linearize_global_policy, local_mean_actions, s_step_update,
)
from gps_ros.algorithms.local_models import LocalModel
from gps_ros.core.costs.base import Cost
from gps_ros.core.kl_lqr import DegenerateCStepError, kl_constrained_lqr
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorGMM, PolicyPriorGMM
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import StepSizeConfig, new_step_multiplier, new_step_multiplier_global
from gps_ros.core.traj_distribution import expected_cost
from gps_ros.policies.base import Policy
from gps_ros.policies.gaussian_policy import GaussianPolicy

STEP_RULES = ("classic", "global")
SAMPLING = ("off_policy", "on_policy")


@dataclass(frozen=True)
class MDGPSConfig(GlobalPolicySettings):
    """kl_step: ε per time step at multiplier 1; initial_step_mult and step_size: the multiplier
    and its range (the paper's peg example: 0.5–3.0); step_rule: "classic" or "global";
    sampling: "off_policy" (local policies) or "on_policy" (global policy); shared_step: one
    multiplier for all conditions from the condition-mean costs (as the authors' code does)
    instead of one per condition; c_step: η search; dynamics_prior / policy_prior: GMM
    priors (None: plain ridge regression); *_regularization: ridge terms of the fits;
    initial_state_floor: added to the fitted x_1 covariance; s_step: network training;
    s_step_history: how many iterations' samples (with their local policies' targets) the S-step
    trains on (1: the paper's, the current iteration's only)."""

    step_size: StepSizeConfig = field(default_factory=lambda: StepSizeConfig(min_mult=0.5, max_mult=3.0))
    step_rule: str = "classic"
    sampling: str = "off_policy"
    shared_step: bool = True
    s_step_history: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"step_rule: expected one of {STEP_RULES}, got {self.step_rule!r}")
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling: expected one of {SAMPLING}, got {self.sampling!r}")
        check_s_step_history(self.s_step_history)


@dataclass(frozen=True)
class MDGPSConditionReport:
    """One condition's iteration: sample_cost (mean total cost of the samples); local_cost ℓ^k_k
    and global_cost ℓ^{k,π}_k (the current local policy and the linearised global policy under
    the new fit); predicted_cost ℓ^{k+1}_k (the new local policy under the new fit); step_mult
    and epsilon used; the C-step's eta, kl (to π̄), backward_passes, eta_raised; c_step_degenerate:
    the C-step found no usable policy (DegenerateCStepError, its message in c_step_error) and the
    previous local policy was kept (eta, kl nan, backward_passes 0, predicted_cost = local_cost)."""

    sample_cost: float
    local_cost: float
    global_cost: float
    predicted_cost: float
    step_mult: float
    epsilon: float
    eta: float
    kl: float
    backward_passes: int
    eta_raised: bool
    c_step_degenerate: bool = False
    c_step_error: str = ""


@dataclass
class _ConditionState:
    policy: LinearGaussianPolicy
    dynamics_prior: DynamicsPriorGMM | None
    policy_prior: PolicyPriorGMM | None
    step_mult: float
    eta: float | None = None
    previous_global_cost: float | None = None  # ℓ^{k−1,π}_{k−1}
    predicted_cost: float | None = None  # ℓ^k_{k−1}


class MDGPS(LocalGlobalSearch):
    """M conditions with one local policy each and one neural global policy.

    The caller samples ``sampling_policies()[m]`` from condition m and passes the batches to
    ``iteration``; ``local_policies`` and ``global_policy`` are the current policies.
    """

    def __init__(
        self,
        config: MDGPSConfig,
        costs: Cost | Sequence[Cost],
        initial_policies: Sequence[LinearGaussianPolicy],
        global_policy: GaussianPolicy,
    ) -> None:
        super().__init__(config, costs, initial_policies, global_policy)
        self._s_step_history = SStepHistory(config.s_step_history)
        self._conditions = [
            _ConditionState(
                p,
                *self._new_priors(),
                config.initial_step_mult,
            )
            for p in initial_policies
        ]

    def sampling_policies(self) -> list[Policy | LinearGaussianPolicy]:
        """What to sample from at each condition for the next iteration."""
        if self.config.sampling == "on_policy" and self.iteration_count > 0:
            return [self.global_policy] * len(self._conditions)
        return self.local_policies

    def iteration(self, samples_per_condition: Sequence[SampleBatch]) -> GPSIterationResult:
        """One MDGPS iteration from samples_per_condition[m], drawn from sampling_policies()[m]."""
        cfg = self.config
        start = time.perf_counter()
        models = self._fit_local_models(samples_per_condition)
        s_step_s = 0.0
        if self.iteration_count == 0:
            # The global policy starts untrained: fit it to the initial local policies before linearising it.
            t0 = time.perf_counter()
            self._s_step(samples_per_condition)
            s_step_s = time.perf_counter() - t0
        p_bars = [
            linearize_global_policy(self.global_policy, s, c.policy_prior, cfg.policy_regularization)[0]
            for c, s in zip(self._conditions, samples_per_condition)
        ]
        local_costs = [m.policy_cost(c.policy) for m, c in zip(models, self._conditions)]
        global_costs = [m.policy_cost(p) for m, p in zip(models, p_bars)]
        if self.iteration_count > 0:
            self._adjust_step(local_costs, global_costs)
        linearization_s = time.perf_counter() - start - s_step_s

        t0 = time.perf_counter()
        reports = [
            self._c_step(state, model, p_bar, local_cost, global_cost)
            for state, model, p_bar, local_cost, global_cost in zip(self._conditions, models, p_bars, local_costs, global_costs)
        ]
        c_step_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        loss = self._s_step(samples_per_condition)
        self._s_step_history.end_iteration()
        s_step_s += time.perf_counter() - t0
        self.iteration_count += 1
        return GPSIterationResult(self.iteration_count, reports, loss, PhaseTimes(linearization_s, c_step_s, s_step_s))

    def _adjust_step(self, local_costs: list[float], global_costs: list[float]) -> None:
        cfg = self.config
        previous = [c.previous_global_cost for c in self._conditions]
        predicted = [c.predicted_cost for c in self._conditions]
        actual = local_costs if cfg.step_rule == "classic" else global_costs
        if cfg.shared_step:
            M = len(self._conditions)
            previous, predicted, actual = ([float(np.mean(v))] * M for v in (previous, predicted, actual))
        rule = new_step_multiplier if cfg.step_rule == "classic" else new_step_multiplier_global
        for state, prev, pred, act in zip(self._conditions, previous, predicted, actual):
            state.step_mult = rule(state.step_mult, prev, pred, act, cfg.step_size)

    def _c_step(
        self, state: _ConditionState, model: LocalModel, p_bar: LinearGaussianPolicy, local_cost: float, global_cost: float
    ) -> MDGPSConditionReport:
        cfg = self.config
        epsilon = cfg.kl_step * state.policy.T * state.step_mult
        try:
            result = kl_constrained_lqr(model.dynamics, model.x1, model.cost, p_bar, epsilon, cfg.c_step, eta_start=state.eta)
        except DegenerateCStepError as error:
            # One condition's degenerate local problem (e.g. a π̄ unstable under its fitted
            # dynamics) must not stop the others: keep its policy, restart its η search next time.
            state.eta = None
            state.previous_global_cost, state.predicted_cost = global_cost, local_cost
            return MDGPSConditionReport(
                model.sample_cost, local_cost, global_cost, local_cost, state.step_mult, epsilon,
                float("nan"), float("nan"), 0, False, c_step_degenerate=True, c_step_error=str(error),
            )
        predicted = float(expected_cost(result.traj, model.cost).sum())
        state.policy, state.eta = result.policy, result.eta
        state.previous_global_cost, state.predicted_cost = global_cost, predicted
        return MDGPSConditionReport(
            model.sample_cost, local_cost, global_cost, predicted, state.step_mult, epsilon,
            result.eta, result.kl, result.backward_passes, result.eta_raised,
        )

    def _s_step(self, samples_per_condition: Sequence[SampleBatch]) -> float:
        policies = self.local_policies
        return s_step_update(
            self.s_step,
            samples_per_condition,
            [local_mean_actions(p, s.X) for p, s in zip(policies, samples_per_condition)],
            [p.inv_cov for p in policies],
            self._s_step_history,
        )
