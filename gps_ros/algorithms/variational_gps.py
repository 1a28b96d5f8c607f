"""Variational guided policy search (Levine & Koltun 2013, Alg. 1) against a known dynamics model.

One trajectory distribution q_i(τ) per initial state x_i, all feeding one policy π:
  1. initialise each q_i by max-entropy DDP (iLQG) with cost β₀ c;
  2. per iteration k: the M-step fits π to samples from the q_i's state-action marginals by
     maximum likelihood (the M-projection); β_k follows the annealing schedule; the E-step
     re-optimises each q_i by iLQG with cost β_k c − log π(u|x), π linearised per time step and
     averaged over samples from q_i's current marginals (Sec. 4).
Alg. 1 leaves open where each E-step's iLQG starts; ``e_step_start`` chooses q_i's previous mean
actions or the actions of π's own deterministic rollout from x_i. iLQG is a local method, and from
q's previous mean it stays in the basin of the line-1 DDP solution, a gait a small policy may not
reproduce; from π's rollout it improves the gait π already produces (swimmer, dev seeds 10 and 11,
50 iterations: deterministic policy 0.71 and 1.00 × DDP from π's rollout, against 1.42 × from q's
previous mean on seed 10).
The schedule (Sec. 5): the cost magnitude starts at β₀ and decreases exponentially to β_final by
iteration ``anneal_iterations`` (the paper: a factor of 10 over 50 iterations), then stays fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from gps_ros.algorithms.known_model_search import KnownModelSearch, NonFiniteActionError, policy_rollouts
from gps_ros.core.ilqg import ILQGResult, ILQGSettings, gaussian_policy_penalty, ilqg
from gps_ros.core.traj_distribution import TrajectoryDistribution
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


E_STEP_STARTS = ("policy", "previous")


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
        if self.e_step_start not in E_STEP_STARTS:
            raise ValueError(f"e_step_start: expected one of {E_STEP_STARTS}, got {self.e_step_start!r}")


@dataclass(frozen=True)
class VGPSIteration:
    """k: iteration index (1-based); beta: β_k of its E-step; policy_loss: the M-step's final weighted
    negative log-likelihood; ddp_cost: [M] Σ_t c (β = 1) along each q_i's new mean."""

    k: int
    beta: float
    policy_loss: float
    ddp_cost: np.ndarray


def sample_marginals(traj: TrajectoryDistribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples per time step from q's state-action marginals: [n, T, dX + dU] (PSD covariances allowed)."""
    evals, evecs = np.linalg.eigh(0.5 * (traj.sigma + np.swapaxes(traj.sigma, 1, 2)))
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))[:, None, :]
    eps = rng.standard_normal((n, *traj.mu.shape))
    return traj.mu + np.einsum("tij,ntj->nti", root, eps)


class VariationalGPS(KnownModelSearch):
    """Alg. 1 for the initial states x0 [M, dX] and one policy π; arguments as KnownModelSearch
    (config: VGPSConfig). ``trajectories`` holds the current q_i (ILQGResult), ``initial`` the DDP
    solutions of line 1."""

    default_config = VGPSConfig()

    def _initial_ddp_settings(self, config: VGPSConfig) -> tuple[ILQGSettings, float, ILQGSettings]:
        return config.initial_ddp, config.schedule.beta(0), config.e_step

    def _start(self) -> None:
        self.trajectories: list[ILQGResult] = list(self.initial)
        Z = np.concatenate([sample_marginals(q.traj, self.config.fit_samples, self.rng) for q in self.trajectories])
        self.policy.set_normalization(Z[..., : self.model.dX].reshape(-1, self.model.dX))

    def m_step(self) -> float:
        """Fit π to samples from every q_i's marginals by maximum likelihood; the final loss."""
        dX = self.model.dX
        Z = np.concatenate([sample_marginals(q.traj, self.config.fit_samples, self.rng) for q in self.trajectories])
        Z = Z.reshape(-1, Z.shape[-1])
        return self.policy.fit_max_likelihood(Z[:, :dX], Z[:, dX:], settings=self.config.policy_fit)

    def e_step(self, beta: float) -> None:
        """Re-optimise each q_i by iLQG with cost β c − log π (π linearised over samples from q_i's
        marginals), from the actions ``e_step_starts`` gives."""
        settings = replace(self.config.e_step, cost_weight=beta)
        dX, T = self.model.dX, self.trajectories[0].X.shape[0]
        updated = []
        for x, q, U_start in zip(self.x0, self.trajectories, self.e_step_starts()):
            Z = sample_marginals(q.traj, self.config.linearization_samples, self.rng)
            pi = self.policy.linearize(np.concatenate([q.X[None], Z[..., :dX]]))
            penalty = gaussian_policy_penalty(pi, pi.inv_cov, np.ones(T))
            updated.append(ilqg(self.model, self.cost, x, U_start, settings, penalty, self.state_slices))
        self.trajectories = updated

    def e_step_starts(self) -> np.ndarray:
        """[M, T, dU] the actions each q_i's E-step starts from (config.e_step_start)."""
        previous = np.stack([q.U for q in self.trajectories])
        if self.config.e_step_start == "previous":
            return previous
        try:
            return policy_rollouts(self.model, self.policy, self.x0, previous.shape[1])[1]
        except NonFiniteActionError:
            # A policy that diverges somewhere gives no trajectory to improve; q's own mean still is one.
            return previous

    def iteration(self) -> VGPSIteration:
        """One pass of Alg. 1 lines 3–6."""
        self.k += 1
        loss = self.m_step()
        beta = self.config.schedule.beta(self.k)
        self.e_step(beta)
        ddp_cost = np.array([q.task_expansion.l.sum() / beta for q in self.trajectories])
        return VGPSIteration(self.k, beta, loss, ddp_cost)
