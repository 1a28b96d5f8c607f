"""The C-step: KL-constrained LQR (MDGPS App. B.1, ALGORITHM_NOTES "KL-constrained LQR").

For a dual variable η the Lagrangian is minimised by the maximum-entropy LQR solution of
the surrogate cost ℓ/η − log p̄(u|x); η is searched in log space so that the KL of the
result to p̄ meets ε. The backward pass works in homogeneous coordinates
z̃ = [x; 1; u], so one Cholesky solve per step gives [K_t | k_t] together.

The pass solves for the deviation δ = u − K̄x − k̄ from p̄, not for u: there −log p̄ is
exactly ½δᵀC̄⁻¹δ and the value function carries only the cost/η part. In u coordinates
V = 0 at η → ∞ is the difference of terms of size |K̄|²‖C̄⁻¹‖; with a linearised global
policy that is unstable under the fitted dynamics (|K̄| ~ 2e3, closed-loop spectral
radius ~1.3 per step, measured on pr2_peg_blind) the round-off of that difference grows
like ρ^{2(T−t)} through the backward pass, makes V indefinite and Q_uu not positive
definite for every large η.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.gaussian import chol_inverse, chol_log_det
from gps_ros.core.kl import gaussian_policy_kl
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.traj_distribution import QuadraticCost, TrajectoryDistribution, forward_arrays
from gps_ros.core.validation import check_array, check_positive_definite


@dataclass(frozen=True)
class CStepConfig:
    """eta_min/eta_max: the range searched for η; eta_init: first η when no warm start is given;
    kl_tolerance: accept |KL − ε| <= kl_tolerance · ε; max_backward_passes: search budget;
    max_step_factor: largest change of η between two trials while bracketing."""

    eta_min: float = 1e-8
    eta_max: float = 1e16
    eta_init: float = 1.0
    kl_tolerance: float = 0.1
    max_backward_passes: int = 60
    max_step_factor: float = 1e3

    def __post_init__(self) -> None:
        if not 0 < self.eta_min < self.eta_max:
            raise ValueError(f"eta_min, eta_max: expected 0 < eta_min < eta_max, got {self.eta_min}, {self.eta_max}")
        if not 0 < self.kl_tolerance < 1:
            raise ValueError(f"kl_tolerance: expected a number in (0, 1), got {self.kl_tolerance}")
        if self.max_backward_passes < 1:
            raise ValueError(f"max_backward_passes: expected a positive integer, got {self.max_backward_passes}")
        if not self.max_step_factor > 1:
            raise ValueError(f"max_step_factor: expected a number > 1, got {self.max_step_factor}")


class DegenerateCStepError(ValueError, RuntimeError):
    """The C-step has no usable solution: no η up to eta_max gives a positive-definite Q_uu (cost
    expansion, p̄ or fitted dynamics degenerate), or the KL to p̄ is still above ε at eta_max (p̄
    unstable under the fitted dynamics). A RuntimeError too, for callers written against the old error."""


@dataclass(frozen=True)
class CStepResult:
    """policy: the new local policy; eta: the dual variable used; kl: D_KL(p ‖ p̄) under the fitted dynamics;
    traj: marginals of policy under the fitted dynamics; backward_passes: how many the η search ran;
    eta_raised: whether some η gave a non-PD Q_uu and had to be raised; active: whether the KL
    constraint binds (False: the solution at eta_min already satisfied it); converged: whether
    |KL − ε| <= tolerance · ε was reached when active."""

    policy: LinearGaussianPolicy
    eta: float
    kl: float
    traj: TrajectoryDistribution
    backward_passes: int
    eta_raised: bool
    active: bool
    converged: bool


def surrogate_prior_terms(p_bar: LinearGaussianPolicy) -> np.ndarray:
    """−log p̄(u|x) as a quadratic in z̃ = [x; 1; u] (up to a constant): Lzz [T, dX+1+dU, dX+1+dU]."""
    T, dU, dX = p_bar.K.shape
    Kh = np.concatenate([p_bar.K, p_bar.k[:, :, None]], axis=2)  # [T, dU, dX + 1]
    CinvKh = p_bar.inv_cov @ Kh
    L = np.empty((T, dX + 1 + dU, dX + 1 + dU))
    L[:, : dX + 1, : dX + 1] = np.swapaxes(Kh, 1, 2) @ CinvKh
    L[:, dX + 1 :, : dX + 1] = -CinvKh
    L[:, : dX + 1, dX + 1 :] = -np.swapaxes(CinvKh, 1, 2)
    L[:, dX + 1 :, dX + 1 :] = p_bar.inv_cov
    return L


def deviation_coordinates(Fh: np.ndarray, Lh: np.ndarray, Kh_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fh [T, n, n+dU] and Lh [T, n+dU, n+dU] rewritten in [x; 1; δ] with u = Kh_ref [x; 1] + δ.

    Kh_ref: [T, dU, n] = [K̄_t | k̄_t]. Q_uu is unchanged by the substitution (δ enters as u does),
    so the Cholesky factors of a backward pass in these coordinates are those of Q_uu, and its
    gains are the deviations from Kh_ref.
    """
    T, dU, n = Kh_ref.shape
    M = np.tile(np.eye(n + dU), (T, 1, 1))
    M[:, n:, :n] = Kh_ref
    L = np.swapaxes(M, 1, 2) @ Lh @ M
    return Fh @ M, 0.5 * (L + np.swapaxes(L, 1, 2))


def homogeneous_cost(cost: QuadraticCost, dX: int) -> np.ndarray:
    """cost as one symmetric matrix in z̃ = [x; 1; u]: [T, dX+1+dU, dX+1+dU] (the constant is dropped)."""
    T, dZ = cost.lz.shape
    order = np.r_[0:dX, dZ, dX:dZ]
    L = np.zeros((T, dZ + 1, dZ + 1))
    L[:, :dZ, :dZ] = cost.Lzz
    L[:, :dZ, dZ] = cost.lz
    L[:, dZ, :dZ] = cost.lz
    return L[:, order][:, :, order]


def homogeneous_dynamics(dynamics: LinearGaussianDynamics) -> np.ndarray:
    """[x_{t+1}; 1] = F̃_t z̃_t: F̃ [T, dX+1, dX+1+dU]."""
    T, dX, dU = dynamics.T, dynamics.dX, dynamics.dU
    Fh = np.zeros((T, dX + 1, dX + 1 + dU))
    Fh[:, :dX, :dX] = dynamics.F[:, :, :dX]
    Fh[:, :dX, dX] = dynamics.f
    Fh[:, :dX, dX + 1 :] = dynamics.F[:, :, dX:]
    Fh[:, dX, dX] = 1.0
    return Fh


def backward_pass(Fh: np.ndarray, Lh: np.ndarray, dX: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Max-entropy LQR backward pass on the homogeneous cost Lh [T, n+dU, n+dU], n = dX + 1.

    Returns Kh [T, dU, dX + 1] = [K_t | k_t] and the lower Cholesky factors of Q_uu
    [T, dU, dU] (C_t = Q_uu⁻¹), or None when some Q_uu is not positive definite.
    """
    T = Lh.shape[0]
    n = dX + 1
    dU = Lh.shape[1] - n
    Kh = np.empty((T, dU, n))
    chol = np.empty((T, dU, dU))
    V = np.zeros((n, n))
    for t in range(T - 1, -1, -1):
        # V of the last step is zero: the cost ends at T.
        Q = Lh[t] + Fh[t].T @ V @ Fh[t] if t < T - 1 else Lh[t]
        c, info = lapack.dpotrf(Q[n:, n:], lower=1, clean=1)
        if info != 0:
            return None
        G, _ = lapack.dpotrs(c, Q[n:, :n], lower=1)
        Kh[t] = -G
        chol[t] = c
        V = Q[:n, :n] - Q[:n, n:] @ G
        V = 0.5 * (V + V.T)
    return Kh, chol


def kl_constrained_lqr(
    dynamics: LinearGaussianDynamics,
    x1: InitialStateDistribution,
    cost: QuadraticCost,
    p_bar: LinearGaussianPolicy,
    epsilon: float,
    config: CStepConfig = CStepConfig(),
    eta_start: float | None = None,
) -> CStepResult:
    """argmin_p Σ_t E_p[ℓ] s.t. D_KL(p(τ) ‖ p̄(τ)) <= epsilon, under the fitted dynamics and x1.

    eta_start warm-starts the η search (e.g. the previous iteration's η). A Q_uu that is
    not positive definite at some η is handled by raising η (reported in eta_raised); when
    none up to config.eta_max gives one, DegenerateCStepError (a ValueError) says what is degenerate.
    """
    T, dU, dX = p_bar.K.shape
    if (dynamics.T, dynamics.dX, dynamics.dU) != (T, dX, dU):
        raise ValueError(
            f"dynamics: expected T={T}, dX={dX}, dU={dU} to match p_bar, got T={dynamics.T}, dX={dynamics.dX}, dU={dynamics.dU}"
        )
    if cost.lz.shape != (T, dX + dU):
        raise ValueError(f"cost.lz: expected shape [{T}, {dX + dU}], got {list(cost.lz.shape)}")
    check_array("x1.mu", x1.mu, (dX,))
    check_positive_definite("x1.sigma", check_array("x1.sigma", x1.sigma, (dX, dX)))
    if not float(epsilon) > 0:
        raise ValueError(f"epsilon: expected a positive number, got {epsilon}")
    eps = float(epsilon)

    Kh_bar = np.concatenate([p_bar.K, p_bar.k[:, :, None]], axis=2)
    Fh, Lcost = deviation_coordinates(homogeneous_dynamics(dynamics), homogeneous_cost(cost, dX), Kh_bar)
    # −log p̄ in [x; 1; δ]: ½δᵀC̄⁻¹δ, with no x terms to cancel.
    Lprior = np.zeros_like(Lcost)
    Lprior[:, dX + 1 :, dX + 1 :] = p_bar.inv_cov
    logdet_bar = chol_log_det(p_bar.chol_cov)

    def evaluate(eta: float):
        solved = backward_pass(Fh, Lcost / eta + Lprior, dX)
        if solved is None:
            return None
        Kh_delta, chol_quu = solved
        Kh = Kh_bar + Kh_delta
        K, k, C = Kh[:, :, :dX], Kh[:, :, dX], chol_inverse(chol_quu)
        traj = forward_arrays(K, k, C, dynamics.F, dynamics.f, dynamics.W, x1.mu, x1.sigma)
        logdet = -chol_log_det(chol_quu)
        kl = gaussian_policy_kl(K, k, C, logdet, p_bar.K, p_bar.k, p_bar.inv_cov, logdet_bar, traj.mu_x, traj.sigma_x)
        return K, k, C, traj, float(kl.sum())

    search = run_eta_search(config, eps, evaluate, eta_start)
    if search.best is None:
        raise DegenerateCStepError(
            f"C-step: Q_uu not positive definite for every η up to eta_max={config.eta_max}: "
            + degeneracy_summary(dynamics, cost, p_bar)
        )
    if search.hi is None and search.best[0] >= config.eta_max:
        # In exact arithmetic KL → 0 as η → ∞; a KL still above ε at eta_max means p̄ drives the
        # fitted dynamics unstable (state covariances of order ρ^{2T}), and the policy found is not near p̄.
        raise DegenerateCStepError(
            f"C-step: KL to p_bar is {search.best[1][-1]:.4g} > epsilon={eps:.4g} even at eta_max={config.eta_max}: "
            f"p_bar is unstable under the fitted dynamics (max closed-loop spectral radius "
            f"{closed_loop_radius(dynamics, p_bar).max():.3g}); " + degeneracy_summary(dynamics, cost, p_bar)
        )
    eta, (K, k, C, traj, kl) = search.best
    return CStepResult(
        LinearGaussianPolicy(K, k, C), eta, kl, traj, search.passes, search.raised, search.active, search.converged
    )


def degeneracy_summary(dynamics: LinearGaussianDynamics, cost: QuadraticCost, p_bar: LinearGaussianPolicy) -> str:
    """The inputs of a degenerate C-step in numbers: the smallest eigenvalue of the cost's L_uu (and
    its step), p̄'s covariance eigenvalue range, the largest |F_u| and whether everything is finite."""
    dX = p_bar.dX
    luu = np.linalg.eigvalsh(cost.Lzz[:, dX:, dX:])[:, 0]
    cov = np.linalg.eigvalsh(p_bar.cov)
    finite = all(np.isfinite(a).all() for a in (dynamics.F, dynamics.f, cost.Lzz, cost.lz, p_bar.K, p_bar.k))
    return (
        f"cost.Lzz[u, u] min eigenvalue {luu.min():.3g} (t={int(luu.argmin())}), p_bar.cov eigenvalues in "
        f"[{cov.min():.3g}, {cov.max():.3g}], max |F_u| {np.abs(dynamics.F[:, :, dX:]).max():.3g}, "
        f"all finite: {finite}"
    )


def closed_loop_radius(dynamics: LinearGaussianDynamics, policy: LinearGaussianPolicy) -> np.ndarray:
    """Spectral radius of the closed loop f_x + f_u K per step [T] (a diagnostic: well above 1 for
    many steps, the policy's state distribution grows geometrically under the dynamics)."""
    dX = policy.dX
    A = dynamics.F[:, :, :dX] + dynamics.F[:, :, dX:] @ policy.K
    return np.abs(np.linalg.eigvals(A)).max(axis=1)


_KL_FLOOR = 1e-300


def run_eta_search(config: CStepConfig, eps: float, evaluate: Callable, eta_start: float | None = None) -> EtaSearch:
    """Run an :class:`EtaSearch` to the end from ``eta_start`` (None: config.eta_init), clipped
    to [eta_min, eta_max]. evaluate(η) -> (K, k, C, traj, KL) or None for a non-PD Q_uu.
    Returns the finished search (its ``best`` is None when no η gave a PD Q_uu)."""
    search = EtaSearch(config, eps)
    eta = float(np.clip(config.eta_init if eta_start is None else eta_start, config.eta_min, config.eta_max))
    while True:
        eta, done = search.step(eta, evaluate(eta))
        if done:
            return search


class EtaSearch:
    """Bracketing search for η in log space; KL(η) decreases as η grows.

    lo: largest η seen with KL > ε (or a non-PD Q_uu); hi: smallest η seen with KL < ε.
    Every move is a secant step on (log η, log KL) through the last two finite points
    (slope −1 before there are two). Outside a bracket it is at least ×2 and at most
    ×max_step_factor; inside, it is kept away from the bracket ends so that the bracket
    shrinks every pass. If the budget runs out, the feasible solution nearest ε (the one
    at hi) is returned.
    """

    def __init__(self, config: CStepConfig, eps: float) -> None:
        self.config, self.eps = config, eps
        self.lo: tuple[float, float] | None = None  # (log η, log KL); log KL = inf for non-PD
        self.hi: tuple[float, float] | None = None
        self.hi_result = None
        self.last_result = None
        self.points: list[tuple[float, float]] = []  # finite (log η, log KL), newest last
        self.passes = 0
        self.raised = False
        self.active = True
        self.converged = False

    @property
    def best(self):
        return self.hi_result if self.hi_result is not None else self.last_result

    def step(self, eta: float, outcome) -> tuple[float, bool]:
        """Record the outcome at eta (None: Q_uu not PD); return the next η and whether to stop."""
        cfg = self.config
        self.passes += 1
        log_eta = float(np.log(eta))
        if outcome is None:
            self.raised = True
            self.lo = (log_eta, np.inf)
        else:
            # Round-off can make a tiny KL zero or negative; the log needs a positive number.
            kl = max(float(outcome[-1]), _KL_FLOOR)
            self.last_result = (eta, outcome)
            self.points.append((log_eta, float(np.log(kl))))
            if abs(kl - self.eps) <= cfg.kl_tolerance * self.eps:
                self.converged = True
                self.hi_result = self.last_result
                return eta, True
            if kl > self.eps:
                self.lo = (log_eta, float(np.log(kl)))
            else:
                self.hi = (log_eta, float(np.log(kl)))
                self.hi_result = self.last_result
                if eta <= cfg.eta_min:
                    self.active = False
                    return eta, True
        if self.passes >= cfg.max_backward_passes:
            return eta, True
        log_eps, max_step = np.log(self.eps), np.log(cfg.max_step_factor)
        if self.hi is None or self.lo is None:
            if self.hi is None and eta >= cfg.eta_max:
                return eta, True
            jump = float(np.clip(abs(self._secant(log_eps) - log_eta), np.log(2.0), max_step))
            if self.hi is None:
                return float(min(np.exp(log_eta + jump), cfg.eta_max)), False
            return float(max(np.exp(log_eta - jump), cfg.eta_min)), False
        a, b = self.lo[0], self.hi[0]
        x = self._secant(log_eps) if np.isfinite(self.lo[1]) else 0.5 * (a + b)
        return float(np.exp(np.clip(x, a + 0.05 * (b - a), b - 0.05 * (b - a)))), False

    def _secant(self, log_eps: float) -> float:
        """log η where the line through the last two finite points (or slope −1 through the last) meets log ε."""
        if not self.points:
            return self.lo[0] + float(np.log(self.config.max_step_factor))
        (x1, f1) = self.points[-1]
        slope = -1.0
        if len(self.points) >= 2:
            x0, f0 = self.points[-2]
            if x1 != x0 and (f1 - f0) / (x1 - x0) < 0:
                slope = (f1 - f0) / (x1 - x0)
        return x1 + (log_eps - f1) / slope


def init_lqr(
    dynamics: LinearGaussianDynamics,
    x0: np.ndarray,
    state_weight: np.ndarray,
    action_weight: np.ndarray,
    init_var: float,
) -> LinearGaussianPolicy:
    """Initial local policy: the LQR controller that holds x near x0 under a guess of the dynamics.

    Cost ½ (x − x0)ᵀ state_weight (x − x0) + ½ uᵀ action_weight u at every step
    (state_weight [dX, dX] PSD, action_weight [dU, dU] PD); covariance init_var · I.
    """
    T, dX, dU = dynamics.T, dynamics.dX, dynamics.dU
    x0 = check_array("x0", x0, (dX,))
    Wx = check_array("state_weight", state_weight, (dX, dX))
    Wu = check_array("action_weight", action_weight, (dU, dU))
    if not float(init_var) > 0:
        raise ValueError(f"init_var: expected a positive number, got {init_var}")
    Lzz = np.zeros((dX + dU, dX + dU))
    Lzz[:dX, :dX], Lzz[dX:, dX:] = Wx, Wu
    lz = np.concatenate([-Wx @ x0, np.zeros(dU)])
    cost = QuadraticCost(np.zeros(T), np.tile(lz, (T, 1)), np.tile(Lzz, (T, 1, 1)))
    solved = backward_pass(homogeneous_dynamics(dynamics), homogeneous_cost(cost, dX), dX)
    if solved is None:
        raise ValueError("action_weight: expected a positive-definite matrix (Q_uu was not positive definite)")
    Kh, _ = solved
    return LinearGaussianPolicy(Kh[:, :, :dX], Kh[:, :, dX], np.tile(float(init_var) * np.eye(dU), (T, 1, 1)))
