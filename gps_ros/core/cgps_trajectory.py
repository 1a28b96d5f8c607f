"""The trajectory step of constrained GPS (Levine & Koltun 2014, Alg. 2, Sec. 3.1) and its dual update (Eq. 2).

q(τ) has a mean (X̂, Û), conditionals q(u|x) = N(Û_t + K_t (x − X̂_t), A_t) and the model's
linearised dynamics. The policy enters only as its linearisation along q's mean,
π(u|x) ≈ N(K^π_t x + k^π_t, Σ^π_t) (a LinearGaussianPolicy), so that this stays numpy-only; an
algorithm that holds the network relinearises it between calls. One step minimises the Laplace
approximation of the Lagrangian

    L(q) = Σ_t E_q[β ℓ(x_t, u_t)] − ½ log|A_t| + λ_t E_q(x_t)[D_KL(π(u|x_t) ‖ q(u|x_t))]

over q: the mean by DDP with a line search (Alg. 2 lines 1–10: iLQG with the extra term
½ λ_t (u − μ^π(x))ᵀ A_t⁻¹ (u − μ^π(x)), Eqs. 3–5), then K_t and A_t at the new mean (lines 11–21:
Eq. 7 for K_t and the Riccati equation Eq. 8 for A_t, alternated per step of a backward pass
whose value Hessian is Eq. 6, with the state covariances S_t recomputed between passes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import solve_continuous_are

from gps_ros.core.costs.base import Cost
from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.gaussian import chol_log_det
from gps_ros.core.ilqg import ILQGResult, ILQGSettings, expansion_hessian, gaussian_policy_penalty, ilqg
from gps_ros.core.kl import gaussian_policy_kl
from gps_ros.core.known_model import DynamicsModel
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.traj_distribution import TrajectoryDistribution, forward_arrays
from gps_ros.core.validation import batched_cholesky, check_array, check_positive_definite


@dataclass(frozen=True)
class CovarianceUpdateSettings:
    """max_inner_iterations: Eq. 7 / Eq. 8 alternations per time step (Alg. 2 lines 15–18);
    max_outer_iterations: backward passes, each after recomputing S_t (lines 12–21); tolerance:
    converged when the largest change of an element of K or A is at most tolerance · (1 + its
    largest magnitude). The passes converge linearly (S_t depends on the K, A of earlier steps,
    which a backward pass updates later): on random problems with λ_t ~ 1 about 15 passes reach
    1e-6 and 35 reach 1e-10 from a cold start; the paper's two passes suffice from a warm start."""

    max_inner_iterations: int = 50
    max_outer_iterations: int = 50
    tolerance: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("max_inner_iterations", "max_outer_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not self.tolerance > 0:
            raise ValueError(f"tolerance: expected a positive number, got {self.tolerance}")


@dataclass(frozen=True)
class CovarianceUpdateResult:
    """K: [T, dU, dX] feedback (Eq. 7); A: [T, dU, dU] conditional covariances (Eq. 8); S: [T, dX, dX] the
    state covariances of q the last backward pass used; M: [T, dU, dU] the matrix M_t of Eq. 8 at
    (K, A, S); outer_iterations: backward passes run; converged: K and A stopped changing (both the
    per-step alternation and the passes); kept_steps: time steps whose Q_uu was not positive
    definite in some pass, where K_t and A_t kept their values instead of solving Eq. 7-8."""

    K: np.ndarray
    A: np.ndarray
    S: np.ndarray
    M: np.ndarray
    outer_iterations: int
    converged: bool
    kept_steps: int = 0


@dataclass(frozen=True)
class CGPSTrajectorySettings:
    """ddp: the mean update (its max_iterations DDP steps with line search; its cost_weight is β, the
    cost magnitude of the paper's Sec. 4 schedule, and its dynamics_noise the W_t of q's linearised
    dynamics); covariance: the K/A update."""

    ddp: ILQGSettings = field(default_factory=lambda: ILQGSettings(max_iterations=1))
    covariance: CovarianceUpdateSettings = field(default_factory=CovarianceUpdateSettings)


@dataclass(frozen=True)
class CGPSTrajectoryResult:
    """X: [T, dX], U: [T, dU] q's new mean; q: the new conditionals N(K_t x + k_t, A_t) with
    k_t = U_t − K_t X_t; traj: q's marginals under ``dynamics`` (the model linearised at the new
    mean) from x1; kl: [T] E_q(x_t) D_KL(π(u|x_t) ‖ q(u|x_t)) under those marginals (Laplace: π as
    linearised); lagrangian: L(q) of the module docstring with the full Gaussian KL (the cost term
    as β ℓ at the mean plus ½ tr(Σ_t β ℓ_zz,t)); mean: the DDP result of the mean update;
    covariance: the K/A update."""

    X: np.ndarray
    U: np.ndarray
    q: LinearGaussianPolicy
    traj: TrajectoryDistribution
    dynamics: LinearGaussianDynamics
    kl: np.ndarray
    lagrangian: float
    mean: ILQGResult
    covariance: CovarianceUpdateResult


def care_covariance(Quu: np.ndarray, lam: float, M: np.ndarray) -> np.ndarray:
    """The positive-definite A [dU, dU] solving A Q_uu A + (λ − 1) A − λ M = 0 (Eq. 8).

    Quu: [dU, dU] positive definite; lam: λ >= 0; M: [dU, dU] symmetric PSD. Written as the CARE
    aᵀX + X a − X b r⁻¹ bᵀ X + q = 0 with a = ½(1 − λ) I, b = chol(Q_uu), r = I, q = λ M; its
    stabilising solution (a − b bᵀ X stable) is the PD root. At λ = 0 it is Q_uu⁻¹ (max entropy).
    """
    dU = Quu.shape[0]
    chol = np.linalg.cholesky(Quu)
    # M is built from products such as D S Dᵀ, symmetric only to rounding; scipy refuses a q that is
    # off by more than ~1e-13 (seen in the walker and the full-size swimmer runs).
    M = 0.5 * (M + M.T)
    A = solve_continuous_are(0.5 * (1.0 - lam) * np.eye(dU), chol, lam * M, np.eye(dU))
    return 0.5 * (A + A.T)


def eq7_feedback(Quu: np.ndarray, Qux: np.ndarray, A: np.ndarray, lam: float, K_pi: np.ndarray) -> np.ndarray:
    """K [dU, dX] = −(Q_uu + λ A⁻¹)⁻¹ (Q_ux − λ A⁻¹ K^π) (Eq. 7), from Quu [dU, dU], Qux [dU, dX],
    A [dU, dU] PD, λ >= 0 and K_pi [dU, dX].

    Computed as −(A Q_uu + λ I)⁻¹ (A Q_ux − λ K^π) (both factors multiplied by A), which never
    inverts A: when π's covariance collapses, Eq. 8 drives A toward singular (A → 0 as M → 0 for
    λ > 1), where A⁻¹ overflows but this form tends to K^π, the limit Eq. 7 has there.
    """
    return -np.linalg.solve(A @ Quu + lam * np.eye(A.shape[0]), A @ Qux - lam * K_pi)


def covariance_update(
    dynamics: LinearGaussianDynamics,
    cost_hessian: np.ndarray,
    sigma1: np.ndarray,
    mean_residual: np.ndarray,
    policy: LinearGaussianPolicy,
    lam: np.ndarray,
    K_init: np.ndarray,
    A_init: np.ndarray,
    settings: CovarianceUpdateSettings = CovarianceUpdateSettings(),
) -> CovarianceUpdateResult:
    """K_t and A_t of q at a fixed mean (Alg. 2 lines 12–21).

    dynamics: F [T, dX, dX+dU] and W [T, dX, dX] linearised at the mean; cost_hessian: [T, dX+dU, dX+dU]
    the Hessian ℓ_zz,t of the (β-weighted) cost at the mean; sigma1: [dX, dX] covariance of q(x_1);
    mean_residual: [T, dU] Û_t − μ^π(X̂_t); policy: π's linearisation (its K is μ^π_x,t, its cov Σ^π_t);
    lam: [T] λ_t >= 0; K_init: [T, dU, dX], A_init: [T, dU, dU] (PD) the starting K and A.

    Each backward pass (value Hessian V_{T+1} = 0) forms Q_t = ℓ_zz,t + F_tᵀ V_{t+1} F_t, alternates
    K_t = −(Q_uu + λ A⁻¹)⁻¹ (Q_ux − λ A⁻¹ K^π) (Eq. 7) and A_t from Eq. 8 with
    M = Σ^π + r rᵀ + (K − K^π) S_t (K − K^π)ᵀ, then sets V_t = 2 L_S,t (Eq. 6). S_t comes from a forward
    pass under the previous K and A.
    """
    T, dU, dX = policy.K.shape
    if (dynamics.T, dynamics.dX, dynamics.dU) != (T, dX, dU):
        raise ValueError(
            f"dynamics: expected T={T}, dX={dX}, dU={dU} to match policy, got T={dynamics.T}, dX={dynamics.dX}, dU={dynamics.dU}"
        )
    H = check_array("cost_hessian", cost_hessian, (T, dX + dU, dX + dU))
    sigma1 = check_array("sigma1", sigma1, (dX, dX))
    r = check_array("mean_residual", mean_residual, (T, dU))
    lam = _check_multipliers("lam", lam, T)
    K = check_array("K_init", K_init, (T, dU, dX)).copy()
    A = check_array("A_init", A_init, (T, dU, dU)).copy()
    check_positive_definite("A_init", A)
    H = 0.5 * (H + np.swapaxes(H, 1, 2))
    F = dynamics.F
    Kp, Sp = policy.K, policy.cov
    rrT = r[:, :, None] * r[:, None, :]

    converged = False
    kept: set[int] = set()
    for outer in range(1, settings.max_outer_iterations + 1):
        S = forward_arrays(K, np.zeros((T, dU)), A, F, np.zeros((T, dX)), dynamics.W, np.zeros(dX), sigma1).sigma_x
        K_prev, A_prev = K.copy(), A.copy()
        V = np.zeros((dX, dX))
        inner_converged = True
        for t in range(T - 1, -1, -1):
            Q = H[t] + F[t].T @ V @ F[t] if t < T - 1 else H[t]
            Qxx, Qux, Quu = Q[:dX, :dX], Q[dX:, :dX], Q[dX:, dX:]
            Kt, At = K[t], A[t]
            # Eq. 8 has no PD solution where Q_uu is not PD. With a PSD cost Hessian that cannot happen
            # in exact arithmetic, yet a 350-step walker run met it (iteration 17) and lost the run
            # when this raised: such a step keeps its K_t and A_t, and the result counts it.
            pd = bool(np.all(batched_cholesky(Quu)[1]))
            if not pd:
                kept.add(t)
            for _ in range(settings.max_inner_iterations if pd else 0):
                K_new = eq7_feedback(Quu, Qux, At, lam[t], Kp[t])
                D = K_new - Kp[t]
                A_new = care_covariance(Quu, lam[t], Sp[t] + rrT[t] + D @ S[t] @ D.T)
                done = _unchanged(K_new, Kt, settings.tolerance) and _unchanged(A_new, At, settings.tolerance)
                Kt, At = K_new, A_new
                if done:
                    break
            else:
                inner_converged = inner_converged and not pd
            K[t], A[t] = Kt, At
            D = Kt - Kp[t]
            V = Qxx + Kt.T @ Qux + Qux.T @ Kt + Kt.T @ Quu @ Kt + lam[t] * D.T @ np.linalg.solve(At, D)
            V = 0.5 * (V + V.T)
        if inner_converged and _unchanged(K, K_prev, settings.tolerance) and _unchanged(A, A_prev, settings.tolerance):
            converged = True
            break
    S = forward_arrays(K, np.zeros((T, dU)), A, F, np.zeros((T, dX)), dynamics.W, np.zeros(dX), sigma1).sigma_x
    D = K - Kp
    M = Sp + rrT + D @ S @ np.swapaxes(D, 1, 2)
    return CovarianceUpdateResult(K, A, S, M, outer, converged, len(kept))


def cgps_trajectory_step(
    model: DynamicsModel,
    cost: Cost,
    x1: InitialStateDistribution,
    q: LinearGaussianPolicy,
    policy: LinearGaussianPolicy,
    lam: np.ndarray,
    settings: CGPSTrajectorySettings = CGPSTrajectorySettings(),
    state_slices: Mapping[str, slice] | None = None,
    U_start: np.ndarray | None = None,
) -> CGPSTrajectoryResult:
    """One iteration of Alg. 2 for one trajectory distribution.

    q: the current conditionals N(K_t x + k_t, A_t) (its mean trajectory is the model's rollout of
    u = K_t x + k_t from x1.mu); policy: π linearised along q's mean, N(K^π_t x + k^π_t, Σ^π_t);
    lam: [T] the multipliers λ_t >= 0; U_start: [T, dU] the actions the mean update's iLQG starts
    from (None: q's mean actions). Returns the new q, its marginals and the Laplace KL per step for
    the dual update.
    """
    dX, dU = int(model.dX), int(model.dU)
    T = q.T
    if (q.dX, q.dU) != (dX, dU):
        raise ValueError(f"q: expected dX={dX}, dU={dU} to match the model, got dX={q.dX}, dU={q.dU}")
    if policy.K.shape != q.K.shape:
        raise ValueError(f"policy.K: expected shape {list(q.K.shape)} to match q, got {list(policy.K.shape)}")
    lam = _check_multipliers("lam", lam, T)
    mu1 = check_array("x1.mu", x1.mu, (dX,))
    sigma1 = check_array("x1.sigma", x1.sigma, (dX, dX))

    U_hat = _mean_actions(model, q, mu1) if U_start is None else check_array("U_start", U_start, (T, dU))
    mean = ilqg(model, cost, mu1, U_hat, settings.ddp, gaussian_policy_penalty(policy, q.inv_cov, lam), state_slices)
    X, U, dynamics = mean.X, mean.U, mean.dynamics
    H = expansion_hessian(mean.task_expansion)
    residual = U - np.einsum("tij,tj->ti", policy.K, X) - policy.k
    cov = covariance_update(dynamics, H, sigma1, residual, policy, lam, mean.K, q.cov, settings.covariance)

    K, A = cov.K, cov.A
    new_q = LinearGaussianPolicy(K, U - np.einsum("tij,tj->ti", K, X), A)
    traj = forward_arrays(K, new_q.k, A, dynamics.F, dynamics.f, dynamics.W, mu1, sigma1)
    logdet_A = chol_log_det(new_q.chol_cov)
    kl = gaussian_policy_kl(
        policy.K, policy.k, policy.cov, chol_log_det(policy.chol_cov), K, new_q.k, new_q.inv_cov, logdet_A,
        traj.mu_x, traj.sigma_x,
    )
    lagrangian = float(
        mean.task_expansion.l.sum() + 0.5 * np.einsum("tij,tji->", H, traj.sigma) - 0.5 * logdet_A.sum() + (lam * kl).sum()
    )
    return CGPSTrajectoryResult(X, U, new_q, traj, dynamics, kl, lagrangian, mean, cov)


def dual_update(lam: np.ndarray, kl: np.ndarray, kl_target: float | np.ndarray, step: float) -> np.ndarray:
    """λ_t ← max(0, λ_t + step · (KL_t − ε_t)) (Eq. 2, with a KL target ε_t): lam, kl: [T]; kl_target: ε, a
    number or [T], >= 0; step: > 0. Returns the new λ [T]."""
    lam = _check_multipliers("lam", lam, None)
    T = lam.shape[0]
    kl = check_array("kl", kl, (T,))
    target = np.broadcast_to(check_array("kl_target", kl_target), (T,)) if np.ndim(kl_target) == 0 \
        else check_array("kl_target", kl_target, (T,))
    if np.any(target < 0):
        raise ValueError(f"kl_target: expected values >= 0, got {target.min()}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step: expected a positive finite number, got {step}")
    return np.maximum(lam + float(step) * (kl - target), 0.0)


def _check_multipliers(name: str, lam: np.ndarray, T: int | None) -> np.ndarray:
    lam = check_array(name, lam, (T,))
    if np.any(lam < 0):
        raise ValueError(f"{name}: expected values >= 0, got {lam.min()} at index {int(lam.argmin())}")
    return lam


def _unchanged(new: np.ndarray, old: np.ndarray, tolerance: float) -> bool:
    return float(np.abs(new - old).max()) <= tolerance * (1.0 + float(np.abs(new).max()))


def _mean_actions(model: DynamicsModel, q: LinearGaussianPolicy, x0: np.ndarray) -> np.ndarray:
    """Actions U [T, dU] of q's mean controller rolled out through the model from x0."""
    U = np.empty((q.T, q.dU))
    x = x0
    for t in range(q.T):
        U[t] = q.K[t] @ x + q.k[t]
        if t + 1 < q.T:
            x = model.step(x, U[t])
    return U
