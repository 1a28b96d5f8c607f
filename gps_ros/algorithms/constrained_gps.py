"""Constrained guided policy search (Levine & Koltun 2014, Alg. 1) against a known dynamics model.

One Gaussian q_i(τ) per initial state, all coupled through the policy π_θ and per-step
multipliers λ_{i,t} on the constraint D_KL(q(x_t) π(u_t|x_t) ‖ q(x_t, u_t)) = 0:
  1. initialise each q_i by max-entropy DDP with cost β₀ ℓ (from U_init, e.g. a demonstration),
     then fit π to them once, by maximum likelihood on samples from their marginals, so that the
     first trajectory step is pulled towards a policy that already resembles q (the I-projection
     with unit weights is ruled by the few steps where q's action covariance is tiny: on the
     swimmer it left π nearly deterministic and not swimming, cost 8.4-9.2 against DDP's 0.3).
     With a ``demonstrator`` (the controller that produced U_init) the labels of that fit are the
     demonstrator's actions at the same samples instead of q's: q's own feedback K_t comes from
     the linearised model and can be too weak to keep a nonlinear system on its feet (the walker:
     a 10-unit fit to q's actions fell from every start, one to the gait controller's walked),
     and ``demonstrator_rounds`` of data aggregation can follow it: π's own noisy rollouts on the
     model, labelled by the demonstrator (up to where ``demonstrator_stop`` says its labels end),
     added to the fit's data and π refit (a fit at q's marginal samples alone fell from every start on
     dev seeds 12-14: those samples come from the linearised model, not from where π goes); with
     ``initial_policy_restarts`` the whole fit is repeated from fresh weights; the cheapest of all
     the fits is kept;
  2. per iteration k: (line 3) ``trajectory_steps`` iterations of Alg. 2 per q_i
     (cgps_trajectory_step, π linearised per time step and averaged over samples from q_i's
     marginals, around q_i's mean or, with ``linearize_at`` "start", around the trajectory the
     first mean update starts from; cost magnitude β_k; that start is where ``trajectory_start``
     says, see known_model_search); (line 4) the I-projection policy step of Sec. 3.2 on samples
     from every q_i(x_t), weighted by λ_{i,t}, towards q_i's conditional means or, with
     ``policy_targets`` "policy_correction", towards π plus q_i's change from π's linearisation
     (undone with ``policy_step_tolerance`` if it raises π's cost on the model by more than that);
     (line 5) the dual update of Eq. 2 with the KL estimated from those samples under the new
     policy.
The schedule (Sec. 4): the cost magnitude grows by a factor of 10 over the first 50 iterations
(CostSchedule with beta_final = 10 beta_init), exponentially, then stays fixed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gps_ros.algorithms.known_model_search import KnownModelSearch, check_trajectory_start, policy_rollouts
from gps_ros.algorithms.variational_gps import CostSchedule
from gps_ros.core.cgps_trajectory import CGPSTrajectorySettings, cgps_trajectory_step, dual_update
from gps_ros.core.costs.base import value_around
from gps_ros.core.dynamics import InitialStateDistribution
from gps_ros.core.ilqg import ILQGSettings
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.traj_distribution import TrajectoryDistribution
from gps_ros.core.validation import check_array
from gps_ros.policies.softplus_policy import PolicyFitSettings, SoftplusPolicy


LINEARIZE_AT = ("mean", "start")
POLICY_TARGETS = ("q", "policy_correction")


@dataclass(frozen=True)
class CGPSConfig:
    """iterations: K of Alg. 1; schedule: β_k (grows ×10 over 50 iterations by default);
    initial_ddp: the iLQG of line 1 (cost_weight replaced by β₀); trajectory: Alg. 2's settings
    (ddp.cost_weight replaced by β_k; ddp.initial_state_cov is S_1 of q(x_1));
    trajectory_steps: Alg. 2 iterations per q_i and outer iteration; lambda_init: λ_t at the start;
    dual_step: η of Eq. 2; kl_target: ε_t subtracted from the KL in Eq. 2 (0: the paper's update);
    fit_samples: states per time step and q_i drawn from q_i(x_t) for the policy step and the KL
    estimate; linearization_samples: samples per time step over which π's derivatives are averaged
    (0: at the mean states alone); linearize_at: where π is linearised for a trajectory step, around
    q_i's previous mean ("mean") or around the states of the trajectory its mean update starts from
    ("start": π's own rollout when trajectory_start is "policy"; with a penalty linearised at q's old
    mean, the mean update started from a walking π's rollout pulled the walker's q, and π with it,
    onto the old mean's linearisation, and π fell by iteration 1-2 at λ_t 1000, dev seeds 14-15);
    policy_targets: the policy step's target means at q_i's samples x, "q" (Sec. 3.2: q_i's
    conditional means K_t x + k_t) or "policy_correction" (π's own mean plus q_i's change from the
    linearisation of π its last trajectory step was pulled towards: μ^π(x) + K_t x + k_t − K^π_t x − k^π_t;
    where q_i equals that linearisation the target is π itself, where the "q" targets are π's
    tangent planes, and fitting π to them over q's spread flattened it: with λ_t at 100 the walker's π
    slowed and its cost rose 2-5 per iteration on every dev seed, with 1000 samples or 5× the L-BFGS
    iterations alike; Eq. 2 still measures the KL to q_i's conditional, which then also counts π's
    curvature around its linearisation);
    policy_fit: the policy step's optimiser; initial_policy_fit: the optimiser of line 1's fit (None: policy_fit);
    demonstrator_rounds: with a demonstrator, rounds of aggregating π's own rollouts into line 1's
    fit (0: none); demonstrator_rollouts: rollouts per initial state and round; demonstrator_noise:
    the std of the Gaussian noise added to π's mean action in them; initial_policy_restarts: line 1's
    fit (with its rounds) from this many initial weights, π's own and then fresh draws. With restarts
    or rounds, π keeps the cheapest of all the fits (each restart's first fit and every round's refit)
    by its cost on the model (policy_cost_samples; the last fit when none is
    finite): a 10-unit fit to the walker's gait fell from every training state from one start and
    walked from another (dev seed 14), and from one round to the next a restart's refits went
    between walking from all 4 training states and falling from all 4 (dev seeds 10, 12);
    policy_step_tolerance: None (the paper: every policy step stands) or τ >= 0: a policy step after
    which π's cost on the model (policy_cost_samples) is above c + τ |c|, c its cost before the
    step, is undone, π keeping its weights and σ (from a non-finite c every step stands;
    a guard like a line search's: at λ_t 1000 single steps took the walker's π from walking to
    falling from 1-3 training states);
    policy_cost_samples: the cost of π that the fits' selection and policy_step_tolerance compare:
    0, its deterministic rollouts from the x_i; n > 0, the mean of n rollouts of the stochastic π
    from each x_i, with one set of noise draws for every comparison (common random numbers): the
    walker's test states differ from the training ones by 0.05 rad/s in the velocities, so what
    decides them is how π copes with perturbations, which its deterministic rollouts do not see
    (dev-seed iterations where π walked from all 4 training states: with a stochastic cost under
    200, 3-4 of 4 test states walked at 96 % of 272; from 200 to 260, at 78 % of 88);
    trajectory_start: where each outer iteration's first
    mean update starts, "policy" (the actions of π's deterministic rollout from x_i; q_i's mean
    actions if π produces a non-finite action) or "previous" (q_i's mean actions)."""

    iterations: int = 50
    schedule: CostSchedule = field(default_factory=lambda: CostSchedule(1.0, 10.0, 50))
    initial_ddp: ILQGSettings = field(default_factory=lambda: ILQGSettings(max_iterations=100))
    trajectory: CGPSTrajectorySettings = field(default_factory=lambda: CGPSTrajectorySettings(
        ddp=ILQGSettings(max_iterations=5, initial_state_cov=1e-6)))
    trajectory_steps: int = 1
    lambda_init: float = 1.0
    dual_step: float = 1.0
    kl_target: float = 0.0
    fit_samples: int = 10
    linearization_samples: int = 10
    policy_fit: PolicyFitSettings = field(default_factory=PolicyFitSettings)
    initial_policy_fit: PolicyFitSettings | None = None
    demonstrator_rounds: int = 0
    initial_policy_restarts: int = 1
    demonstrator_rollouts: int = 5
    demonstrator_noise: float = 3.0
    trajectory_start: str = "policy"
    linearize_at: str = "mean"
    policy_targets: str = "q"
    policy_step_tolerance: float | None = None
    policy_cost_samples: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "trajectory_steps", "fit_samples", "demonstrator_rollouts", "initial_policy_restarts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        for name in ("linearization_samples", "demonstrator_rounds", "policy_cost_samples"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {getattr(self, name)}")
        if not (np.isfinite(self.demonstrator_noise) and self.demonstrator_noise >= 0):
            raise ValueError(f"demonstrator_noise: expected a finite number >= 0, got {self.demonstrator_noise}")
        if self.policy_targets not in POLICY_TARGETS:
            raise ValueError(f"policy_targets: expected one of {POLICY_TARGETS}, got {self.policy_targets!r}")
        if self.linearize_at not in LINEARIZE_AT:
            raise ValueError(f"linearize_at: expected one of {LINEARIZE_AT}, got {self.linearize_at!r}")
        if not (np.isfinite(self.lambda_init) and self.lambda_init >= 0):
            raise ValueError(f"lambda_init: expected a finite number >= 0, got {self.lambda_init}")
        if not (np.isfinite(self.dual_step) and self.dual_step > 0):
            raise ValueError(f"dual_step: expected a positive finite number, got {self.dual_step}")
        if self.policy_step_tolerance is not None and not (np.isfinite(self.policy_step_tolerance)
                                                          and self.policy_step_tolerance >= 0):
            raise ValueError(f"policy_step_tolerance: expected None or a finite number >= 0, got {self.policy_step_tolerance}")
        if not (np.isfinite(self.kl_target) and self.kl_target >= 0):
            raise ValueError(f"kl_target: expected a finite number >= 0, got {self.kl_target}")
        check_trajectory_start("trajectory_start", self.trajectory_start)


@dataclass
class TrajectoryState:
    """One q_i: mean X [T, dX], U [T, dU]; conditionals q; marginals traj."""

    X: np.ndarray
    U: np.ndarray
    q: LinearGaussianPolicy
    traj: TrajectoryDistribution


@dataclass(frozen=True)
class CGPSIteration:
    """k: iteration (1-based); beta: β_k; policy_loss: the policy step's final loss; kl: [M, T] the
    sampled KL of each q_i after the policy step; lam: [M, T] the multipliers after the dual update;
    ddp_cost: [M] Σ_t ℓ (β = 1) along each q_i's mean; policy_step_accepted: with
    config.policy_step_tolerance, whether the policy step stood (policy_loss is that of the step
    either way); None without one."""

    k: int
    beta: float
    policy_loss: float
    kl: np.ndarray
    lam: np.ndarray
    ddp_cost: np.ndarray
    policy_step_accepted: bool | None = None


def sampled_policy_kl(policy: SoftplusPolicy, q: LinearGaussianPolicy, X: np.ndarray) -> np.ndarray:
    """Mean over samples X [S, T, dX] of D_KL(π(u|x) ‖ q(u|x_t)) per time step: [T].

    Per sample ½[tr(A⁻¹ Σ^π) + dᵀ A⁻¹ d − dU + log|A| − log|Σ^π|] with d = μ^π(x) − K_t x − k_t."""
    d = policy.mean(X) - np.einsum("tux,stx->stu", q.K, X) - q.k
    cov = policy.cov
    logdet_A = 2.0 * np.log(np.diagonal(q.chol_cov, axis1=1, axis2=2)).sum(axis=1)
    quad = np.einsum("stu,tuv,stv->t", d, q.inv_cov, d) / X.shape[0]
    trace = np.einsum("tuv,vu->t", q.inv_cov, cov)
    return 0.5 * (trace + quad - q.dU + logdet_A - np.linalg.slogdet(cov)[1])


def _linear_means(policies: list[LinearGaussianPolicy], X: np.ndarray) -> np.ndarray:
    """K_t x + k_t of each policies[m] at X [M, S, T, dX]: [M, S, T, dU]."""
    K = np.stack([p.K for p in policies])
    k = np.stack([p.k for p in policies])
    return np.einsum("mtux,mstx->mstu", K, X) + k[:, None]


class ConstrainedGPS(KnownModelSearch):
    """Alg. 1 for initial states x0 [M, dX] and one policy (trained in place).

    Arguments as KnownModelSearch (config: CGPSConfig), and demonstrator: None, or the controller
    behind U_init as a function X [N, dX] -> U [N, dU], whose actions label line 1's policy fit;
    demonstrator_stop: None, or X [..., dX] -> bool [...], the states where its labels end (the
    walker's LocomotionTask.fallen): config.demonstrator_rounds' rollouts are cut before the first.
    ``trajectories`` holds the current q_i (TrajectoryState),
    ``initial`` the DDP solutions of line 1 (ILQGResult), ``lam`` the multipliers [M, T].
    """

    default_config = CGPSConfig()

    def __init__(self, *args: Any, demonstrator: Callable[[np.ndarray], np.ndarray] | None = None,
                 demonstrator_stop: Callable[[np.ndarray], np.ndarray] | None = None, **kwargs: Any) -> None:
        if demonstrator is not None and not callable(demonstrator):
            raise ValueError(f"demonstrator: expected None or a function X [N, dX] -> U [N, dU], got {type(demonstrator).__name__}")
        if demonstrator_stop is not None and not callable(demonstrator_stop):
            raise ValueError("demonstrator_stop: expected None or a function X [..., dX] -> bool [...], "
                             f"got {type(demonstrator_stop).__name__}")
        if demonstrator_stop is not None and demonstrator is None:
            raise ValueError("demonstrator_stop: it cuts the demonstrator's rollouts, but demonstrator is None")
        self.demonstrator = demonstrator
        self.demonstrator_stop = demonstrator_stop
        super().__init__(*args, **kwargs)

    def _initial_ddp_settings(self, config: CGPSConfig) -> tuple[ILQGSettings, float, ILQGSettings]:
        if config.demonstrator_rounds and self.demonstrator is None:
            raise ValueError(f"demonstrator_rounds: {config.demonstrator_rounds} rounds need a demonstrator, got None")
        return config.initial_ddp, config.schedule.beta(0), config.trajectory.ddp

    def _start(self) -> None:
        model, config, policy = self.model, self.config, self.policy
        ddp = config.trajectory.ddp
        self.trajectories = [TrajectoryState(r.X, r.U, r.policy, r.traj) for r in self.initial]
        self.x1 = [InitialStateDistribution(x, ddp.initial_state_cov * np.eye(model.dX)) for x in self.x0]
        T = self.initial[0].X.shape[0]
        self.lam = np.full((len(self.x0), T), float(config.lambda_init))
        trajs = [r.traj for r in self.initial]
        policy.set_normalization(self.state_samples(trajs).reshape(-1, model.dX))
        self.policy_linearizations: list[LinearGaussianPolicy] | None = None
        n = config.policy_cost_samples
        self.cost_noise = self.rng.standard_normal((n * len(self.x0), T, model.dU)) if n else None
        self._compared_cost: tuple[np.ndarray, float] | None = None
        restarts = config.initial_policy_restarts
        select = restarts > 1 or config.demonstrator_rounds > 0
        start, best, best_cost = (copy.deepcopy(policy) if restarts > 1 else None), None, np.inf
        for restart in range(restarts):
            if restart:
                policy.load_parameters(start)
                policy.set_mean_weights(SoftplusPolicy(policy.dX, policy.dU, policy.hidden, seed=int(self.rng.integers(2**31)),
                                                       inputs=policy.inputs).mean_weights())
            for _ in self._initial_policy_fits(trajs):
                if select and (cost := self.compared_policy_cost()) < best_cost:
                    best, best_cost = copy.deepcopy(policy), cost
        if best is not None:
            policy.load_parameters(best)

    def compared_policy_cost(self) -> float:
        """policy_cost with config.policy_cost_samples' fixed noise (none: deterministic), kept for
        π's current weights and σ: the trajectory step leaves π alone, so the guard's cost before a
        policy step is the one measured after the last."""
        params = np.concatenate([self.policy.mean_weights(), self.policy.log_std.detach().numpy()])
        if self._compared_cost is None or not np.array_equal(params, self._compared_cost[0]):
            self._compared_cost = (params, self.policy_cost(self.cost_noise))
        return self._compared_cost[1]

    def _initial_policy_fits(self, trajs: list[TrajectoryDistribution]) -> Iterator[None]:
        """Line 1's fit to q_i's marginals trajs, or with a demonstrator to its actions at their
        samples followed by config.demonstrator_rounds refits with π's rollouts added; yields after
        each fit, with π holding its result."""
        config, policy = self.config, self.policy
        if self.demonstrator is None:
            self.fit_to_marginals(trajs, config.initial_policy_fit)
            yield
            return
        settings = config.initial_policy_fit or config.policy_fit
        X = self.state_samples(trajs).reshape(-1, self.model.dX)
        U = self._demonstrate(X)
        policy.fit_max_likelihood(X, U, settings=settings)
        yield
        for _ in range(config.demonstrator_rounds):
            X_new = self._policy_rollout_states()
            if not len(X_new):
                continue
            X, U = np.concatenate([X, X_new]), np.concatenate([U, self._demonstrate(X_new)])
            policy.fit_max_likelihood(X, U, settings=settings)
            yield

    def _demonstrate(self, X: np.ndarray) -> np.ndarray:
        return check_array("demonstrator(X)", self.demonstrator(X), (X.shape[0], self.model.dU))

    def _policy_rollout_states(self) -> np.ndarray:
        """[N, dX]: the states of config.demonstrator_rollouts noisy rollouts of π from each x_i, each
        up to (not including) its first demonstrator_stop state; NonFiniteActionError (from
        policy_rollouts) when π's action is not finite."""
        T = self.initial[0].X.shape[0]
        x0 = np.repeat(self.x0, self.config.demonstrator_rollouts, axis=0)
        # policy_rollouts scales its noise by π's σ; this noise is to have std demonstrator_noise.
        sigma = np.sqrt(np.diag(self.policy.cov))
        noise = self.rng.standard_normal((len(x0), T, self.model.dU)) * (self.config.demonstrator_noise / sigma)
        X = policy_rollouts(self.model, self.policy, x0, T, noise)[0]
        if self.demonstrator_stop is None:
            return X.reshape(-1, self.model.dX)
        stop = np.asarray(self.demonstrator_stop(X), dtype=bool)
        if stop.shape != X.shape[:2]:
            raise ValueError(f"demonstrator_stop(X): expected shape {list(X.shape[:2])}, got {list(stop.shape)}")
        return X[np.cumsum(stop, axis=1) == 0]

    def trajectory_step(self, beta: float) -> None:
        """Alg. 1 line 3: Alg. 2 iterations on each q_i against π linearised over samples from q_i."""
        settings = replace(self.config.trajectory, ddp=replace(self.config.trajectory.ddp, cost_weight=beta))
        X_starts, U_starts = self.trajectory_starts(np.stack([s.X for s in self.trajectories]),
                                                    np.stack([s.U for s in self.trajectories]), self.config.trajectory_start)
        self.policy_linearizations = []
        for i, (state, X_start, U_start) in enumerate(zip(self.trajectories, X_starts, U_starts)):
            for _ in range(self.config.trajectory_steps):
                at_start = self.config.linearize_at == "start" and U_start is not None
                pi = self.linearize_policy(state.traj, state.X, X_start if at_start else None)
                r = cgps_trajectory_step(self.model, self.cost, self.x1[i], state.q, pi, self.lam[i], settings,
                                         self.state_slices, U_start)
                state, U_start = TrajectoryState(r.X, r.U, r.q, r.traj), None
            self.trajectories[i] = state
            self.policy_linearizations.append(pi)

    def iteration(self) -> CGPSIteration:
        """One pass of Alg. 1 lines 3–5."""
        self.k += 1
        beta = self.config.schedule.beta(self.k)
        self.trajectory_step(beta)
        X = self.state_samples([s.traj for s in self.trajectories])
        tolerance = self.config.policy_step_tolerance
        if tolerance is None:
            loss, accepted = self._policy_step(X, self.lam), None
        else:
            before, cost_before = copy.deepcopy(self.policy), self.compared_policy_cost()
            loss = self._policy_step(X, self.lam)
            accepted = bool(self.compared_policy_cost() <= cost_before + tolerance * abs(cost_before))
            if not accepted:
                self.policy.load_parameters(before)
        kl = np.stack([sampled_policy_kl(self.policy, s.q, X[i]) for i, s in enumerate(self.trajectories)])
        self.lam = np.stack([dual_update(lam, d, self.config.kl_target, self.config.dual_step) for lam, d in zip(self.lam, kl)])
        ddp_cost = np.array([
            value_around(self.cost, s.X, s.U, state_slices=self.state_slices).sum() for s in self.trajectories
        ])
        return CGPSIteration(self.k, beta, loss, kl, self.lam.copy(), ddp_cost, accepted)

    def _policy_step(self, X: np.ndarray, lam: np.ndarray) -> float:
        """Alg. 1 line 4 (Sec. 3.2): π → the λ-weighted I-projection onto each q_i(u|x_t) at X [M, S, T, dX]."""
        M, S, T, dX = X.shape
        P = np.stack([s.q.inv_cov for s in self.trajectories])
        target = _linear_means([s.q for s in self.trajectories], X)
        if self.config.policy_targets == "policy_correction":
            if self.policy_linearizations is None:
                raise ValueError('policy_targets: "policy_correction" needs a trajectory step first (π\'s linearisation)')
            target = target - _linear_means(self.policy_linearizations, X) + self.policy.mean(X)
        precision = np.broadcast_to(P[:, None], (M, S, T, self.model.dU, self.model.dU))
        weights = np.broadcast_to(lam[:, None], (M, S, T))
        if not weights.sum() > 0:
            # All constraints inactive: Sec. 3.2's objective is flat; keep π where it is.
            return 0.0
        return self.policy.fit_i_projection(
            X.reshape(-1, dX), target.reshape(-1, self.model.dU), precision.reshape(-1, self.model.dU, self.model.dU),
            weights.reshape(-1), self.config.policy_fit,
        )
