"""Variational guided policy search (Levine & Koltun 2013, Alg. 1) against a known dynamics model.

One trajectory distribution q_i(τ) per initial state x_i, all feeding one policy π:
  1. initialise each q_i by max-entropy DDP (iLQG) with cost β₀ c;
  2. per iteration k: the M-step fits π to samples from the q_i's state-action marginals by
     maximum likelihood (the M-projection); β_k follows the annealing schedule; the E-step
     re-optimises each q_i by iLQG with cost β_k c − log π(u|x), π linearised per time step and
     averaged over samples from q_i's current marginals (Sec. 4).
Alg. 1 leaves open where each E-step's iLQG starts; ``e_step_start`` chooses π's own rollout or
q_i's previous mean (see known_model_search).
The schedule (Sec. 5): the cost magnitude starts at β₀ and decreases exponentially to β_final by
iteration ``anneal_iterations`` (the paper: a factor of 10 over 50 iterations), then stays fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gps_ros.algorithms.known_model_search import KnownModelSearch, check_trajectory_start
from gps_ros.core.ilqg import ILQGResult, ILQGSettings, gaussian_policy_penalty, ilqg
from gps_ros.policies.softplus_policy import PolicyFitSettings


@dataclass(frozen=True)
class CostSchedule:
    """β_k = beta_init · (beta_final / beta_init)^min(k / anneal_iterations, 1) for k = 0, 1, ...:
    exponential between the two magnitudes, fixed after ``anneal_iterations``."""

    beta_init: float = 1.0
    beta_final: float = 0.1
    anneal_iterations: int = 50

    def __post_init__(self) -> None:
        for name in ("beta_init", "beta_final"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive finite number, got {value}")
        if int(self.anneal_iterations) < 1:
            raise ValueError(f"anneal_iterations: expected a positive integer, got {self.anneal_iterations}")

    def beta(self, k: int) -> float:
        return float(self.beta_init * (self.beta_final / self.beta_init) ** min(k / self.anneal_iterations, 1.0))


@dataclass(frozen=True)
class VGPSConfig:
    """iterations: K of Alg. 1; schedule: β_k; initial_ddp: the iLQG of line 1 (its cost_weight is
    replaced by β₀); e_step: the iLQG of line 6 (cost_weight replaced by β_k; its initial_state_cov
    and dynamics_noise shape q's marginals); fit_samples: samples per time step and initial state
    drawn from q's marginals for the M-step; linearization_samples: samples per time step over
    which π's derivatives are averaged; policy_fit: the M-step optimiser; e_step_start: where each
    E-step's iLQG starts, "policy" (the actions of π's deterministic rollout from x_i; q_i's
    previous mean actions if π produces a non-finite action) or "previous" (q_i's mean actions)."""

    iterations: int = 50
    schedule: CostSchedule = field(default_factory=CostSchedule)
    initial_ddp: ILQGSettings = field(default_factory=lambda: ILQGSettings(max_iterations=100))
    e_step: ILQGSettings = field(default_factory=lambda: ILQGSettings(max_iterations=10))
    fit_samples: int = 10
    linearization_samples: int = 10
    policy_fit: PolicyFitSettings = field(default_factory=PolicyFitSettings)
    e_step_start: str = "policy"

    def __post_init__(self) -> None:
        for name in ("iterations", "fit_samples", "linearization_samples"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        check_trajectory_start("e_step_start", self.e_step_start)


@dataclass(frozen=True)
class VGPSIteration:
    """k: iteration index (1-based); beta: β_k of its E-step; policy_loss: the M-step's final weighted
    negative log-likelihood; ddp_cost: [M] Σ_t c (β = 1) along each q_i's new mean."""

    k: int
    beta: float
    policy_loss: float
    ddp_cost: np.ndarray


class VariationalGPS(KnownModelSearch):
    """Alg. 1 for the initial states x0 [M, dX] and one policy π; arguments as KnownModelSearch
    (config: VGPSConfig). ``trajectories`` holds the current q_i (ILQGResult), ``initial`` the DDP
    solutions of line 1."""

    default_config = VGPSConfig()

    def _initial_ddp_settings(self, config: VGPSConfig) -> tuple[ILQGSettings, float, ILQGSettings]:
        return config.initial_ddp, config.schedule.beta(0), config.e_step

    def _start(self) -> None:
        self.trajectories: list[ILQGResult] = list(self.initial)
        X = self.state_samples([q.traj for q in self.trajectories])
        self.policy.set_normalization(X.reshape(-1, self.model.dX))

    def m_step(self) -> float:
        """Fit π to samples from every q_i's marginals by maximum likelihood; the final loss."""
        return self.fit_to_marginals([q.traj for q in self.trajectories])

    def e_step(self, beta: float) -> None:
        """Re-optimise each q_i by iLQG with cost β c − log π (π linearised over samples from q_i's
        marginals), from the actions ``trajectory_starts`` gives."""
        settings = replace(self.config.e_step, cost_weight=beta)
        T = self.trajectories[0].X.shape[0]
        updated = []
        _, starts = self.trajectory_starts(np.stack([q.X for q in self.trajectories]),
                                           np.stack([q.U for q in self.trajectories]), self.config.e_step_start)
        for x, q, U_start in zip(self.x0, self.trajectories, starts):
            pi = self.linearize_policy(q.traj, q.X)
            penalty = gaussian_policy_penalty(pi, pi.inv_cov, np.ones(T))
            updated.append(ilqg(self.model, self.cost, x, U_start, settings, penalty, self.state_slices))
        self.trajectories = updated

    def iteration(self) -> VGPSIteration:
        """One pass of Alg. 1 lines 3–6."""
        self.k += 1
        loss = self.m_step()
        beta = self.config.schedule.beta(self.k)
        self.e_step(beta)
        ddp_cost = np.array([q.task_expansion.l.sum() / beta for q in self.trajectories])
        return VGPSIteration(self.k, beta, loss, ddp_cost)
