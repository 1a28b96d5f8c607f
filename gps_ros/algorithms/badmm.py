"""BADMM guided policy search (Levine, Finn, Darrell, Abbeel, JMLR 2016), the baseline of
Montgomery & Levine 2016 (their Sec. 2.2 and 6).

The problem min Σ_i E_{p_i}[ℓ] s.t. p_i(u|x) = π_θ(u|x) is solved by Bregman ADMM on the
first moments, with Lagrange multipliers λ_t (one [dU] vector per condition and step)
and penalty weights ν_t:

  C-step  p_i ← argmin Σ_t E_{p_i}[ℓ − λ_tᵀu] + ν_t E_{p_i(x_t)} D_KL(p_i(u|x_t) ‖ π̄_i(u|x_t))
          s.t. D_KL(p_i(τ) ‖ p̄_i(τ)) ≤ ε        (p̄_i: the local policy that was sampled)
  S-step  θ ← argmin Σ_{t,i,j} ν_t D_KL(π_θ(u|x_tij) ‖ p_i(u|x_tij)) + λ_tᵀ μ^π(x_tij)
          i.e. precision-weighted regression onto μ_p(x) − C_t λ_t / ν_t with weights ν_t
  dual    λ_t ← λ_t + α ν_t C_t⁻¹ mean_j(μ^π(x_tij) − μ_p(x_tij))
          (C_t⁻¹ makes the step scale-free in the action units, as in the authors' code)
  weights ν_t ← max(ν_t + s_k · E D_KL(p_i(u|x_t) ‖ π̄_i(u|x_t)), ν_min) once per iteration
          (dual gradient step on the agreement constraint; s_k from a per-iteration schedule)

C, S and dual steps alternate ``inner_iterations`` times per batch of samples. For a dual
variable η of the KL constraint, the C-step Lagrangian Σ_t E[ℓ − λᵀu − ν_t log π̄ − η log p̄]
− (η + ν_t) H(p(u|x_t)) is minimised by the LQR backward pass on the unscaled surrogate
with the maximum-entropy covariance C_t = (η + ν_t) Q_uu⁻¹; η is searched as in the
MDGPS C-step. ε follows the traj-opt "classic" step-size rule against the sampled
local policy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gps_ros.algorithms.global_policy import (
    GlobalPolicySettings, GPSIterationResult, LocalGlobalSearch, PhaseTimes, linearize_global_policy, local_mean_actions,
    s_step_update,
)
from gps_ros.algorithms.local_models import LocalModel
from gps_ros.core.costs.base import Cost
from gps_ros.core.gaussian import chol_inverse, chol_log_det
from gps_ros.core.kl import gaussian_policy_kl, policy_kl_per_step
from gps_ros.core.kl_lqr import (
    CStepConfig, CStepResult, DegenerateCStepError, backward_pass, homogeneous_cost, homogeneous_dynamics, run_eta_search,
    surrogate_prior_terms,
)
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorGMM, PolicyPriorGMM
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import StepSizeConfig, new_step_multiplier
from gps_ros.core.traj_distribution import expected_cost, forward_arrays
from gps_ros.core.validation import check_array
from gps_ros.policies.gaussian_policy import GaussianPolicy


@dataclass(frozen=True)
class BADMMConfig(GlobalPolicySettings):
    """kl_step, initial_step_mult, step_size: ε = kl_step · T · multiplier against the sampled
    local policy, multiplier by the classic rule; inner_iterations: C/S/dual rounds per batch of
    samples; policy_dual_rate: α of the λ step; initial_policy_weight: ν_t at the start;
    weight_step_schedule: s_k of the ν step at iteration k (the last entry repeats);
    min_policy_weight: floor ν_min; the rest as in MDGPSConfig."""

    kl_step: float = 2.0
    step_size: StepSizeConfig = field(default_factory=lambda: StepSizeConfig(min_mult=0.1, max_mult=3.0))
    inner_iterations: int = 4
    policy_dual_rate: float = 0.1
    initial_policy_weight: float = 0.01
    weight_step_schedule: tuple[float, ...] = (1e-2,)
    min_policy_weight: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.inner_iterations) != self.inner_iterations or self.inner_iterations < 1:
            raise ValueError(f"inner_iterations: expected an integer >= 1, got {self.inner_iterations}")
        if not self.policy_dual_rate >= 0:
            raise ValueError(f"policy_dual_rate: expected a number >= 0, got {self.policy_dual_rate}")
        if not self.min_policy_weight > 0:
            raise ValueError(f"min_policy_weight: expected a positive number, got {self.min_policy_weight}")
        if not self.initial_policy_weight >= self.min_policy_weight:
            raise ValueError(
                f"initial_policy_weight: expected a number >= min_policy_weight ({self.min_policy_weight}), "
                f"got {self.initial_policy_weight}"
            )
        schedule = tuple(float(s) for s in self.weight_step_schedule)
        if not schedule or any(not s >= 0 for s in schedule):
            raise ValueError(f"weight_step_schedule: expected a non-empty sequence of numbers >= 0, got {self.weight_step_schedule}")
        object.__setattr__(self, "weight_step_schedule", schedule)


@dataclass(frozen=True)
class BADMMConditionReport:
    """One condition's iteration (values of the last inner round): sample_cost; local_cost ℓ^k_k
    (the sampled policy under the new fit) and predicted_cost (the new local policy under it);
    step_mult, epsilon; the C-step's eta, kl (to the sampled policy), backward_passes,
    eta_raised; policy_kl: Σ_t E D_KL(p ‖ π̄) of the new local policy; mean_weight: mean ν_t;
    lambda_norm: max_t |λ_t|."""

    sample_cost: float
    local_cost: float
    predicted_cost: float
    step_mult: float
    epsilon: float
    eta: float
    kl: float
    backward_passes: int
    eta_raised: bool
    policy_kl: float
    mean_weight: float
    lambda_norm: float


@dataclass
class _ConditionState:
    policy: LinearGaussianPolicy
    dynamics_prior: DynamicsPriorGMM | None
    policy_prior: PolicyPriorGMM | None
    step_mult: float
    lambda_k: np.ndarray  # λ_t [T, dU]
    nu: np.ndarray  # ν_t [T]
    eta: float | None = None
    previous_cost: float | None = None  # ℓ^{k−1}_{k−1}
    predicted_cost: float | None = None  # ℓ^k_{k−1}


def badmm_c_step(
    model: LocalModel,
    p_prev: LinearGaussianPolicy,
    pi_bar: LinearGaussianPolicy,
    lambda_k: np.ndarray,
    nu: np.ndarray,
    epsilon: float,
    config: CStepConfig = CStepConfig(),
    eta_start: float | None = None,
) -> CStepResult:
    """argmin_p Σ_t E_p[ℓ − λ_tᵀu] + ν_t E D_KL(p(u|x_t) ‖ π̄(u|x_t)) s.t. D_KL(p(τ) ‖ p̄(τ)) ≤ epsilon.

    p_prev: p̄ [T, dU, dX]; pi_bar: the linearised global policy; lambda_k: [T, dU]; nu: [T] >= 0.
    Returned kl is D_KL(p(τ) ‖ p̄(τ)) under the model's dynamics.
    """
    T, dU, dX = p_prev.K.shape
    if pi_bar.K.shape != (T, dU, dX):
        raise ValueError(f"pi_bar.K: expected shape [{T}, {dU}, {dX}] like p_prev, got {list(pi_bar.K.shape)}")
    lambda_k = check_array("lambda_k", lambda_k, (T, dU))
    nu = check_array("nu", nu, (T,))
    if np.any(nu < 0):
        raise ValueError(f"nu: expected values >= 0, got min {nu.min()}")
    if not float(epsilon) > 0:
        raise ValueError(f"epsilon: expected a positive number, got {epsilon}")
    dyn = model.dynamics
    Fh = homogeneous_dynamics(dyn)
    # −λᵀu is linear in u: it sits in the (u, 1) entries of the homogeneous cost (twice, symmetric, times ½).
    Lbase = homogeneous_cost(model.cost, dX)
    Lbase[:, dX + 1 :, dX] -= lambda_k
    Lbase[:, dX, dX + 1 :] -= lambda_k
    Lbase += nu[:, None, None] * surrogate_prior_terms(pi_bar)
    Lprev = surrogate_prior_terms(p_prev)
    logdet_prev = chol_log_det(p_prev.chol_cov)

    def evaluate(eta: float):
        solved = backward_pass(Fh, Lbase + eta * Lprev, dX)
        if solved is None:
            return None
        Kh, chol_quu = solved
        temperature = eta + nu  # the entropy weight of each step
        K, k = Kh[:, :, :dX], Kh[:, :, dX]
        C = temperature[:, None, None] * chol_inverse(chol_quu)
        traj = forward_arrays(K, k, C, dyn.F, dyn.f, dyn.W, model.x1.mu, model.x1.sigma)
        logdet = dU * np.log(temperature) - chol_log_det(chol_quu)
        kl = gaussian_policy_kl(K, k, C, logdet, p_prev.K, p_prev.k, p_prev.inv_cov, logdet_prev, traj.mu_x, traj.sigma_x)
        return K, k, C, traj, float(kl.sum())

    search = run_eta_search(config, float(epsilon), evaluate, eta_start)
    if search.best is None:
        raise DegenerateCStepError(
            f"BADMM C-step: Q_uu not positive definite for every η up to eta_max={config.eta_max}; "
            "the cost expansion or the policies' covariances are degenerate"
        )
    eta, (K, k, C, traj, kl) = search.best
    return CStepResult(
        LinearGaussianPolicy(K, k, C), eta, kl, traj, search.passes, search.raised, search.active, search.converged
    )


def dual_step(
    lambda_k: np.ndarray, nu: np.ndarray, local: LinearGaussianPolicy, X: np.ndarray, global_mean: np.ndarray, rate: float
) -> np.ndarray:
    """New λ [T, dU]: λ_t + rate ν_t C_t⁻¹ mean_j(μ^π(x_tj) − μ_p(x_tj)).

    X: [N, T, dX] sampled states; global_mean: μ^π at their observations [N, T, dU]."""
    mismatch = (global_mean - local_mean_actions(local, X)).mean(axis=0)  # [T, dU]
    return lambda_k + rate * nu[:, None] * np.einsum("tij,tj->ti", local.inv_cov, mismatch)


class BADMM(LocalGlobalSearch):
    """M conditions with one local policy each and one neural global policy; same interface as MDGPS."""

    def __init__(
        self,
        config: BADMMConfig,
        costs: Cost | Sequence[Cost],
        initial_policies: Sequence[LinearGaussianPolicy],
        global_policy: GaussianPolicy,
    ) -> None:
        super().__init__(config, costs, initial_policies, global_policy)
        T, dU = initial_policies[0].T, initial_policies[0].dU
        self._conditions = [
            _ConditionState(
                p,
                *self._new_priors(),
                config.initial_step_mult,
                np.zeros((T, dU)),
                np.full(T, float(config.initial_policy_weight)),
            )
            for p in initial_policies
        ]

    def sampling_policies(self) -> list[LinearGaussianPolicy]:
        """BADMM samples the local policies."""
        return self.local_policies

    def iteration(self, samples_per_condition: Sequence[SampleBatch]) -> GPSIterationResult:
        """One BADMM iteration (inner_iterations C/S/dual rounds) from samples of local_policies."""
        cfg = self.config
        t0 = time.perf_counter()
        models = self._fit_local_models(samples_per_condition)
        T = self._conditions[0].policy.T
        sampled = self.local_policies
        local_costs = [m.policy_cost(p) for m, p in zip(models, sampled)]
        for state, cost in zip(self._conditions, local_costs):
            if state.previous_cost is not None:
                state.step_mult = new_step_multiplier(state.step_mult, state.previous_cost, state.predicted_cost, cost, cfg.step_size)
        linearization_s, c_step_s, s_step_s = time.perf_counter() - t0, 0.0, 0.0
        weight_step = cfg.weight_step_schedule[min(self.iteration_count, len(cfg.weight_step_schedule) - 1)]

        for inner in range(cfg.inner_iterations):
            t0 = time.perf_counter()
            fits = [
                # The prior takes this batch once; later rounds only refit around the retrained network.
                linearize_global_policy(self.global_policy, s, c.policy_prior, cfg.policy_regularization, update_prior=inner == 0)
                for c, s in zip(self._conditions, samples_per_condition)
            ]
            if self.iteration_count > 0 or inner > 0:
                for state, model, s, (pi_bar, global_mean) in zip(self._conditions, models, samples_per_condition, fits):
                    state.lambda_k = dual_step(state.lambda_k, state.nu, state.policy, s.X, global_mean, cfg.policy_dual_rate)
                    if inner == cfg.inner_iterations - 1:
                        kl_t = policy_kl_per_step(state.policy, pi_bar, model.trajectory(state.policy))
                        state.nu = np.maximum(state.nu + weight_step * kl_t, cfg.min_policy_weight)
            t1 = time.perf_counter()
            results = [
                badmm_c_step(model, p_prev, pi_bar, state.lambda_k, state.nu,
                             cfg.kl_step * T * state.step_mult, cfg.c_step, eta_start=state.eta)
                for state, model, p_prev, (pi_bar, _) in zip(self._conditions, models, sampled, fits)
            ]
            for state, result in zip(self._conditions, results):
                state.policy, state.eta = result.policy, result.eta
            t2 = time.perf_counter()
            loss = self._s_step(samples_per_condition)
            linearization_s += t1 - t0  # the dual updates (a few einsums) count with the linearisation
            c_step_s += t2 - t1
            s_step_s += time.perf_counter() - t2

        reports = []
        for state, model, local_cost, result, (pi_bar, _) in zip(self._conditions, models, local_costs, results, fits):
            predicted = float(expected_cost(result.traj, model.cost).sum())
            state.previous_cost, state.predicted_cost = local_cost, predicted
            reports.append(BADMMConditionReport(
                model.sample_cost, local_cost, predicted, state.step_mult, cfg.kl_step * T * state.step_mult,
                result.eta, result.kl, result.backward_passes, result.eta_raised,
                float(policy_kl_per_step(state.policy, pi_bar, result.traj).sum()),
                float(state.nu.mean()), float(np.abs(state.lambda_k).max()),
            ))
        self.iteration_count += 1
        return GPSIterationResult(self.iteration_count, reports, loss, PhaseTimes(linearization_s, c_step_s, s_step_s))

    def _s_step(self, samples_per_condition: Sequence[SampleBatch]) -> float:
        """Targets μ_p(x) − C_t λ_t / ν_t with precisions ν_t C_t⁻¹, ν normalised to mean 1 over all
        (condition, t) so the loss keeps the scale of an unweighted S-step."""
        states = self._conditions
        scale = float(np.mean([s.nu for s in states]))
        targets, precisions = [], []
        for state, samples in zip(states, samples_per_condition):
            shift = np.einsum("tij,tj->ti", state.policy.cov, state.lambda_k) / state.nu[:, None]
            targets.append(local_mean_actions(state.policy, samples.X) - shift)
            precisions.append((state.nu / scale)[:, None, None] * state.policy.inv_cov)
        return s_step_update(self.s_step, samples_per_condition, targets, precisions)
