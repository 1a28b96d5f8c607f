"""Maximum-entropy iLQG/DDP against a known dynamics model (variational GPS Sec. 4; constrained GPS Sec. 3.1).

Each iteration linearises the model along the nominal trajectory (X, U), expands the cost to
second order there, runs the max-entropy LQR backward pass of kl_lqr (homogeneous coordinates
[δx; 1; δu] around the nominal, so one Cholesky solve gives [K_t | δk_t]) and rolls the model
out under u = U_t + α δk_t + K_t (x − X_t), halving α until the objective decreases.

The objective is Σ_t β c(x_t, u_t) + e_t(x_t, u_t): β (``cost_weight``) is the cost magnitude
that both papers anneal, and e is an optional extra per-step term given as a callable
``extra(X [T, dX], U [T, dU]) -> CostExpansion`` (N = 1) that expands it around any trajectory.
Variational GPS passes −log π(u|x) there (VGPS Sec. 4: c̃ = β c − log π), constrained GPS the
multiplier-weighted KL term ½ λ_t (u − μ^π(x))ᵀ A_t⁻¹ (u − μ^π(x)); ``gaussian_policy_penalty``
builds that term for a linear-Gaussian π.

Levenberg-Marquardt regularisation adds ½ μ |u − U_t|² to the cost expansion (a proximal term
around the nominal actions): μ grows when some Q_uu is not positive definite or no α improves
the objective, and shrinks after each accepted step. The returned gains come from a final
backward pass at the converged nominal with the smallest μ (0 when possible) that keeps every
Q_uu positive definite, so that q's covariance is the max-entropy Q_uu⁻¹ (VGPS Sec. 4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from gps_ros.core.costs.base import Cost, CostExpansion, expand_around, value_around
from gps_ros.core.dynamics import LinearGaussianDynamics
from gps_ros.core.gaussian import chol_inverse
from gps_ros.core.kl_lqr import backward_pass, homogeneous_cost, homogeneous_dynamics
from gps_ros.core.known_model import DynamicsModel
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.traj_distribution import QuadraticCost, TrajectoryDistribution, forward_arrays
from gps_ros.core.validation import check_array

ExtraCost = Callable[[np.ndarray, np.ndarray], CostExpansion]
"""extra(X [T, dX], U [T, dU]) -> CostExpansion with N = 1: an additive per-step cost term expanded around (X, U)."""


@dataclass(frozen=True)
class ILQGSettings:
    """max_iterations: accepted DDP steps at most; tolerance: stop when the relative decrease of the
    objective falls below it; cost_weight: β, the magnitude of the task cost; mu_init: first
    Levenberg-Marquardt μ (0: none); mu_min: the μ used when raising from 0; mu_max: give up
    above it; mu_factor: how μ grows and shrinks; alpha_factor: backtracking factor of the line
    search on the feed-forward term; alpha_min: smallest α tried; dynamics_noise: isotropic
    variance W = dynamics_noise · I of the linearised dynamics used for q's marginals (0: the
    deterministic model, as in the papers); initial_state_cov: variance S_1 = initial_state_cov · I
    of q(x_1) (0: a known start)."""

    max_iterations: int = 100
    tolerance: float = 1e-6
    cost_weight: float = 1.0
    mu_init: float = 1e-6
    mu_min: float = 1e-6
    mu_max: float = 1e10
    mu_factor: float = 10.0
    alpha_factor: float = 0.5
    alpha_min: float = 1e-4
    dynamics_noise: float = 0.0
    initial_state_cov: float = 0.0

    def __post_init__(self) -> None:
        if int(self.max_iterations) < 1:
            raise ValueError(f"max_iterations: expected a positive integer, got {self.max_iterations}")
        if not self.tolerance > 0:
            raise ValueError(f"tolerance: expected a positive number, got {self.tolerance}")
        if not (np.isfinite(self.cost_weight) and self.cost_weight > 0):
            raise ValueError(f"cost_weight: expected a positive finite number, got {self.cost_weight}")
        if not (0 <= self.mu_init <= self.mu_max and 0 < self.mu_min < self.mu_max):
            raise ValueError(
                f"mu_init, mu_min, mu_max: expected 0 <= mu_init <= mu_max and 0 < mu_min < mu_max, "
                f"got {self.mu_init}, {self.mu_min}, {self.mu_max}"
            )
        if not self.mu_factor > 1:
            raise ValueError(f"mu_factor: expected a number > 1, got {self.mu_factor}")
        if not 0 < self.alpha_factor < 1:
            raise ValueError(f"alpha_factor: expected a number in (0, 1), got {self.alpha_factor}")
        if not 0 < self.alpha_min <= 1:
            raise ValueError(f"alpha_min: expected a number in (0, 1], got {self.alpha_min}")
        if not self.dynamics_noise >= 0:
            raise ValueError(f"dynamics_noise: expected a number >= 0, got {self.dynamics_noise}")
        if not self.initial_state_cov >= 0:
            raise ValueError(f"initial_state_cov: expected a number >= 0, got {self.initial_state_cov}")


@dataclass(frozen=True)
class ILQGResult:
    """X: [T, dX], U: [T, dU] the optimised nominal trajectory; K: [T, dU, dX], k: [T, dU] its controller
    u = K_t x + k_t (k_t = U_t − K_t X_t); policy: q(u|x) = N(K_t x + k_t, Q_uu,t⁻¹); traj: q's
    state-action marginals under ``dynamics``, the model linearised along (X, U) (absolute
    coordinates, W = dynamics_noise · I); task_expansion: β·cost and extra_expansion: the extra
    term (None without one) expanded at (X, U), N = 1; cost: the objective Σ_t β c + e at (X, U);
    cost_history: [iterations + 1] the objective after each accepted step, non-increasing;
    converged: the relative decrease fell below tolerance; regularization: the μ of the final
    backward pass (0 unless some Q_uu was not positive definite without it)."""

    X: np.ndarray
    U: np.ndarray
    K: np.ndarray
    k: np.ndarray
    policy: LinearGaussianPolicy
    traj: TrajectoryDistribution
    dynamics: LinearGaussianDynamics
    task_expansion: CostExpansion
    extra_expansion: CostExpansion | None
    cost: float
    cost_history: np.ndarray
    iterations: int
    converged: bool
    regularization: float


def rollout(model: DynamicsModel, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
    """States X [T, dX] of the model from x0 [dX] under the open-loop actions U [T, dU] (X[0] = x0)."""
    X = np.empty((U.shape[0], model.dX))
    X[0] = x0
    for t in range(U.shape[0] - 1):
        X[t + 1] = model.step(X[t], U[t])
    return X


def ilqg(
    model: DynamicsModel,
    cost: Cost,
    x0: np.ndarray,
    U_init: np.ndarray,
    settings: ILQGSettings = ILQGSettings(),
    extra: ExtraCost | None = None,
    state_slices: Mapping[str, slice] | None = None,
) -> ILQGResult:
    """Minimise Σ_t β c(x_t, u_t) + extra_t(x_t, u_t) over the actions from x0 [dX], starting at U_init [T, dU].

    state_slices: the state layout named slices of ``cost`` refer to. See the module docstring for
    the algorithm and ILQGResult for what is returned.
    """
    dX, dU = int(model.dX), int(model.dU)
    x0 = check_array("x0", x0, (dX,))
    U = check_array("U_init", U_init, (None, dU)).copy()
    T = U.shape[0]
    if T < 1:
        raise ValueError(f"U_init: expected shape [T, {dU}] with T >= 1, got {list(U.shape)}")
    objective = _Objective(cost, extra, settings.cost_weight, state_slices, T, dX, dU)

    X = rollout(model, x0, U)
    task, extra_exp, J = objective(X, U)
    history = [J]
    F, f = _linearization(model, X, U)
    mu, iterations, converged = settings.mu_init, 0, False
    while iterations < settings.max_iterations and mu <= settings.mu_max:
        solved = backward_pass(*_deviation_problem(F, f, X, U, task, extra_exp, mu), dX)
        if solved is None:
            mu = max(mu * settings.mu_factor, settings.mu_min)
            continue
        Kh, _ = solved
        step, J_full = _line_search(model, objective, x0, X, U, Kh, J, settings)
        if step is None:
            # No α improves: at a stationary point the full step changes J only by round-off.
            if abs(J_full - J) <= settings.tolerance * abs(J):
                converged = True
                break
            mu = max(mu * settings.mu_factor, settings.mu_min)
            continue
        X_new, U_new, task, extra_exp, J_new = step
        decrease = (J - J_new) / max(abs(J), np.finfo(float).tiny)
        X, U, J = X_new, U_new, J_new
        history.append(J)
        iterations += 1
        F, f = _linearization(model, X, U)
        mu = 0.0 if mu / settings.mu_factor < settings.mu_min else mu / settings.mu_factor
        if decrease < settings.tolerance:
            converged = True
            break

    Kh, chol_quu, mu_final = _final_backward_pass(F, f, X, U, task, extra_exp, dX, settings)
    K = Kh[:, :, :dX]
    k = U - np.einsum("tij,tj->ti", K, X)
    cov = chol_inverse(chol_quu)
    W = np.tile(settings.dynamics_noise * np.eye(dX), (T, 1, 1))
    dynamics = LinearGaussianDynamics(F, f, W)
    traj = forward_arrays(K, k, cov, F, f, W, x0, settings.initial_state_cov * np.eye(dX))
    return ILQGResult(
        X, U, K, k, LinearGaussianPolicy(K, k, cov), traj, dynamics, task, extra_exp, J, np.array(history),
        iterations, converged, mu_final,
    )


def gaussian_policy_penalty(policy: LinearGaussianPolicy, precision: np.ndarray, weight: np.ndarray) -> ExtraCost:
    """The extra term ½ w_t (u − K^π_t x − k^π_t)ᵀ P_t (u − K^π_t x − k^π_t) as an ExtraCost.

    policy: the linearisation of π along the trajectory (its K [T, dU, dX] and k [T, dU]);
    precision: P [T, dU, dU] (symmetric PSD); weight: w [T] (>= 0). With P = Σ^π⁻¹ and w = 1 it
    is −log π(u|x) up to a constant (variational GPS); with P = A_t⁻¹ and w = λ_t it is the
    mean-dependent part of λ_t KL(π ‖ q) (constrained GPS Sec. 3.1).
    """
    T, dU, dX = policy.K.shape
    P = check_array("precision", precision, (T, dU, dU))
    w = check_array("weight", weight, (T,))
    if np.any(w < 0):
        raise ValueError(f"weight: expected values >= 0, got {w.min()} at index {int(w.argmin())}")
    wP = w[:, None, None] * 0.5 * (P + np.swapaxes(P, 1, 2))
    wPK = wP @ policy.K

    def expand(X: np.ndarray, U: np.ndarray) -> CostExpansion:
        r = U - np.einsum("tij,tj->ti", policy.K, X) - policy.k
        wPr = np.einsum("tij,tj->ti", wP, r)
        return CostExpansion(
            0.5 * np.einsum("ti,ti->t", r, wPr)[None],
            -np.einsum("tji,tj->ti", policy.K, wPr)[None],
            wPr[None],
            (np.swapaxes(policy.K, 1, 2) @ wPK)[None],
            wP[None],
            -wPK[None],
        )

    return expand


def expansion_hessian(expansion: CostExpansion) -> np.ndarray:
    """The symmetric Hessian in z = [x; u] of a one-trajectory expansion (N = 1): [T, dX+dU, dX+dU]."""
    H = np.block([[expansion.lxx[0], np.swapaxes(expansion.lux[0], 1, 2)], [expansion.lux[0], expansion.luu[0]]])
    return 0.5 * (H + np.swapaxes(H, 1, 2))


class _Objective:
    """Σ_t β c + e along a trajectory, with both expansions (reused by the next backward pass)."""

    def __init__(self, cost, extra, weight, state_slices, T, dX, dU) -> None:
        self.cost, self.extra, self.weight, self.state_slices = cost, extra, weight, state_slices
        self.shapes = {"l": (1, T), "lx": (1, T, dX), "lu": (1, T, dU), "lxx": (1, T, dX, dX),
                       "luu": (1, T, dU, dU), "lux": (1, T, dU, dX)}

    def __call__(self, X: np.ndarray, U: np.ndarray) -> tuple[CostExpansion, CostExpansion | None, float]:
        task = self._checked("cost", expand_around(self.cost, X, U, state_slices=self.state_slices)).scaled(self.weight)
        J = float(task.l.sum())
        if self.extra is None:
            return task, None, J
        extra = self._checked("extra", self.extra(X, U))
        return task, extra, J + float(extra.l.sum())

    def value(self, X: np.ndarray, U: np.ndarray) -> float:
        """The objective alone (what __call__ returns as J), without the cost's derivatives."""
        l = check_array("cost.l", value_around(self.cost, X, U, state_slices=self.state_slices), self.shapes["l"])
        J = float((self.weight * l).sum())  # the same arithmetic as __call__, so an accepted J stays below
        if self.extra is None:
            return J
        return J + float(check_array("extra.l", self.extra(X, U).l, self.shapes["l"]).sum())

    def _checked(self, name: str, expansion: CostExpansion) -> CostExpansion:
        return CostExpansion(*(check_array(f"{name}.{field}", getattr(expansion, field), shape)
                               for field, shape in self.shapes.items()))


def _linearization(model: DynamicsModel, X: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model linearised along (X, U) in absolute coordinates: F [T, dX, dX+dU], f [T, dX]."""
    T, dX = X.shape
    dU = U.shape[1]
    fx, fu, x_next = model.linearize(X, U)
    fx = check_array("model.linearize fx", fx, (T, dX, dX))
    fu = check_array("model.linearize fu", fu, (T, dX, dU))
    x_next = check_array("model.linearize x_next", x_next, (T, dX))
    f = x_next - np.einsum("tij,tj->ti", fx, X) - np.einsum("tij,tj->ti", fu, U)
    return np.concatenate([fx, fu], axis=2), f


def _deviation_problem(F, f, X, U, task, extra, mu) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous dynamics Fh [T, dX+1, dX+1+dU] and cost Lh of the deviation (δx, δu) from (X, U),
    with the proximal term ½ μ |δu|² added to the cost."""
    T, dX = X.shape
    total = task if extra is None else task + extra
    lz = np.concatenate([total.lx[0], total.lu[0]], axis=1)
    Lzz = expansion_hessian(total)
    Lzz[:, dX:, dX:] += mu * np.eye(Lzz.shape[1] - dX)
    # Defect between the linearisation's successor and the nominal's next state (zero for an exact rollout).
    defect = np.zeros_like(f)
    defect[:-1] = (np.einsum("tij,tj->ti", F, np.concatenate([X, U], axis=1)) + f)[:-1] - X[1:]
    Fh = homogeneous_dynamics(LinearGaussianDynamics(F, defect, np.zeros((T, dX, dX))))
    return Fh, homogeneous_cost(QuadraticCost(np.zeros(T), lz, Lzz), dX)


def _line_search(model, objective, x0, X, U, Kh, J, settings):
    """Roll out u = U_t + α δk_t + K_t (x − X_t) for α = 1, alpha_factor, ... >= alpha_min.

    Returns the first (X, U, task, extra, J) whose objective is below J (or None) and the objective
    of the full step α = 1 (inf if its rollout diverged).
    """
    dX = X.shape[1]
    K, dk = Kh[:, :, :dX], Kh[:, :, dX]
    alpha, J_full = 1.0, np.inf
    while alpha >= settings.alpha_min:
        X_new, U_new = np.empty_like(X), np.empty_like(U)
        x = x0
        for t in range(U.shape[0]):
            X_new[t] = x
            U_new[t] = U[t] + alpha * dk[t] + K[t] @ (x - X[t])
            if t + 1 < U.shape[0]:
                x = model.step(x, U_new[t])
        if np.all(np.isfinite(X_new)) and np.all(np.isfinite(U_new)):
            J_new = objective.value(X_new, U_new)
            if alpha == 1.0:
                J_full = J_new
            if J_new < J:
                task, extra, J_new = objective(X_new, U_new)
                return (X_new, U_new, task, extra, J_new), J_full
        alpha *= settings.alpha_factor
    return None, J_full


def _final_backward_pass(F, f, X, U, task, extra, dX, settings):
    """Backward pass at the nominal with the smallest μ in {0, mu_min, mu_min·factor, ...} giving PD Q_uu's."""
    mu = 0.0
    while mu <= settings.mu_max:
        solved = backward_pass(*_deviation_problem(F, f, X, U, task, extra, mu), dX)
        if solved is not None:
            return solved[0], solved[1], mu
        mu = max(mu * settings.mu_factor, settings.mu_min)
    raise ValueError(
        f"cost: Q_uu not positive definite at the optimised trajectory for every regularisation up to "
        f"mu_max={settings.mu_max}; the cost expansion has no max-entropy distribution"
    )
