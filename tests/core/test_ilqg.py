import numpy as np
import pytest
from scipy.optimize import minimize

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.dynamics import InitialStateDistribution
from gps_ros.core.ilqg import ILQGSettings, gaussian_policy_penalty, ilqg, rollout
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.linear_system import LinearSystem, QuadraticStateCost, lqr_optimum, random_stable_system
from gps_ros.core.samples import SampleBatch

T, dX, dU = 20, 4, 2


class LinearModel:
    """A LinearSystem as a deterministic DynamicsModel (its mean dynamics)."""

    def __init__(self, system: LinearSystem) -> None:
        self.system, self.dX, self.dU = system, system.dX, system.dU

    def step(self, x, u):
        return self.system.A @ x + self.system.B @ u + self.system.c

    def linearize(self, X, U):
        s = self.system
        n = len(X)
        return np.tile(s.A, (n, 1, 1)), np.tile(s.B, (n, 1, 1)), X @ s.A.T + U @ s.B.T + s.c


class Pendulum:
    """Damped pendulum, x = [θ, ω], u = torque; semi-implicit Euler with analytic Jacobians."""

    dX, dU = 2, 1

    def __init__(self, dt=0.05, g=9.81, damping=0.1) -> None:
        self.dt, self.g, self.damping = dt, g, damping

    def step(self, x, u):
        w = x[1] + self.dt * (-self.g * np.sin(x[0]) - self.damping * x[1] + u[0])
        return np.array([x[0] + self.dt * w, w])

    def linearize(self, X, U):
        dt, g, b = self.dt, self.g, self.damping
        n = len(X)
        dw_dx = np.stack([-dt * g * np.cos(X[:, 0]), np.full(n, 1 - dt * b)], axis=1)  # [n, 2]
        fx = np.empty((n, 2, 2))
        fx[:, 1] = dw_dx
        fx[:, 0] = dt * dw_dx
        fx[:, 0, 0] += 1.0
        fu = np.zeros((n, 2, 1))
        fu[:, 1, 0] = dt
        fu[:, 0, 0] = dt * dt
        return fx, fu, np.array([self.step(x, u) for x, u in zip(X, U)])


def _linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    cost = QuadraticStateCost(np.diag([1.0, 0.5, 2.0, 0.2]), np.diag([0.1, 0.3]), rng.standard_normal(dX))
    return rng, system, cost, rng.standard_normal(dX)


def _riccati_quu(system, Q, R):
    """Q_uu,t = R + Bᵀ P_{t+1} B of the plain finite-horizon Riccati recursion (P_T = 0)."""
    A, B = system.A, system.B
    P = np.zeros_like(A)
    out = []
    for _ in range(system.T):
        H = R + B.T @ P @ B
        K = -np.linalg.solve(H, B.T @ P @ A)
        out.append(H)
        P = Q + A.T @ P @ A + A.T @ P @ B @ K
    return np.array(out[::-1])


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_linear_quadratic_matches_riccati_in_one_iteration(beta):
    _, system, cost, x0 = _linear_problem()
    settings = ILQGSettings(max_iterations=1, mu_init=0.0, cost_weight=beta)
    res = ilqg(LinearModel(system), cost, x0, np.zeros((T, dU)), settings)
    K, k, _ = lqr_optimum(system, cost, InitialStateDistribution(x0, np.zeros((dX, dX))))
    np.testing.assert_allclose(res.K, K, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.k, k, rtol=1e-9, atol=1e-10)
    # Max-entropy covariance: the inverse of Q_uu of the β-scaled cost.
    cov = np.linalg.inv(beta * _riccati_quu(system, cost.Q, cost.R))
    np.testing.assert_allclose(res.policy.cov, cov, rtol=1e-9, atol=1e-12)
    # q's marginal means follow the nominal; with S_1 = 0 and W = 0 the state covariance is 0 at t = 0.
    np.testing.assert_allclose(res.traj.mu_x, res.X, atol=1e-10)
    np.testing.assert_allclose(res.traj.mu[:, dX:], res.U, atol=1e-10)
    assert np.allclose(res.traj.sigma_x[0], 0.0)
    np.testing.assert_allclose(res.traj.sigma_x[1], system.B @ cov[0] @ system.B.T, rtol=1e-9, atol=1e-14)


def test_linear_quadratic_converges_with_regularisation():
    _, system, cost, x0 = _linear_problem(1)
    res = ilqg(LinearModel(system), cost, x0, np.zeros((T, dU)), ILQGSettings(mu_init=1.0))
    K, k, _ = lqr_optimum(system, cost, InitialStateDistribution(x0, np.zeros((dX, dX))))
    assert res.converged and res.regularization == 0.0
    np.testing.assert_allclose(res.K, K, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.k, k, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(res.cost_history) <= 0)


def test_policy_penalty_is_an_action_cost():
    """With π's mean 0 and precision R2, ½ w uᵀR2 u adds w R2 to R: the Riccati solution of (Q, R + w R2)."""
    _, system, cost, x0 = _linear_problem(2)
    R2, w = np.array([[0.4, 0.1], [0.1, 0.2]]), 0.7
    zero = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    penalty = gaussian_policy_penalty(zero, np.tile(R2, (T, 1, 1)), np.full(T, w))
    res = ilqg(LinearModel(system), cost, x0, np.zeros((T, dU)), ILQGSettings(max_iterations=1, mu_init=0.0), penalty)
    combined = QuadraticStateCost(cost.Q, cost.R + w * R2, cost.target)
    K, k, _ = lqr_optimum(system, combined, InitialStateDistribution(x0, np.zeros((dX, dX))))
    np.testing.assert_allclose(res.K, K, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(res.k, k, rtol=1e-9, atol=1e-10)


def test_policy_penalty_derivatives_match_finite_differences():
    rng = np.random.default_rng(3)
    n = 3
    Kp, kp = rng.standard_normal((n, dU, dX)), rng.standard_normal((n, dU))
    M = rng.standard_normal((n, dU, dU))
    P = M @ np.swapaxes(M, 1, 2) + np.eye(dU)
    w = rng.uniform(0.5, 2.0, n)
    pen = gaussian_policy_penalty(LinearGaussianPolicy(Kp, kp, np.tile(np.eye(dU), (n, 1, 1))), P, w)
    X, U = rng.standard_normal((n, dX)), rng.standard_normal((n, dU))
    e = pen(X, U)
    z = np.concatenate([X, U], axis=1)

    def value(z):
        r = z[:, dX:] - np.einsum("tij,tj->ti", Kp, z[:, :dX]) - kp
        return 0.5 * w * np.einsum("ti,tij,tj->t", r, P, r)

    h = 1e-6
    grad = np.stack([(value(z + h * np.eye(dX + dU)[i]) - value(z - h * np.eye(dX + dU)[i])) / (2 * h)
                     for i in range(dX + dU)], axis=1)
    np.testing.assert_allclose(e.l[0], value(z), rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([e.lx[0], e.lu[0]], axis=1), grad, rtol=1e-6, atol=1e-7)
    hess = np.empty((n, dX + dU, dX + dU))
    for i in range(dX + dU):
        ei = h * np.eye(dX + dU)[i]
        Xp, Xm = (z + ei)[:, :dX], (z - ei)[:, :dX]
        Up, Um = (z + ei)[:, dX:], (z - ei)[:, dX:]
        gp, gm = pen(Xp, Up), pen(Xm, Um)
        hess[:, :, i] = (np.concatenate([gp.lx[0], gp.lu[0]], 1) - np.concatenate([gm.lx[0], gm.lu[0]], 1)) / (2 * h)
    np.testing.assert_allclose(e.lxx[0], hess[:, :dX, :dX], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e.luu[0], hess[:, dX:, dX:], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e.lux[0], hess[:, dX:, :dX], rtol=1e-6, atol=1e-7)


def _shooting_cost_and_grad(model, cost, x0, U):
    """Open-loop cost Σ ℓ(x_t, u_t) and its gradient by the adjoint recursion on the analytic Jacobians."""
    X = rollout(model, x0, U)
    e = cost.expand(SampleBatch(X[None], U[None]))
    fx, fu, _ = model.linearize(X, U)
    grad = np.empty_like(U)
    lam = np.zeros(model.dX)  # ∂(cost of steps > t)/∂x_{t+1}
    for t in range(len(U) - 1, -1, -1):
        grad[t] = e.lu[0, t] + fu[t].T @ lam
        lam = e.lx[0, t] + fx[t].T @ lam
    return float(e.l.sum()), grad


def test_pendulum_reaches_shooting_optimum_monotonically():
    model = Pendulum()
    Tp = 60
    cost = QuadraticStateCost(np.diag([2.0, 0.1]), np.array([[0.05]]), np.array([np.pi / 2, 0.0]))
    x0 = np.array([0.0, 0.0])
    U0 = np.zeros((Tp, 1))
    res = ilqg(model, cost, x0, U0, ILQGSettings(tolerance=1e-9))
    opt = minimize(lambda u: _shooting_cost_and_grad(model, cost, x0, u.reshape(Tp, 1)), U0.ravel(), jac=True,
                   method="L-BFGS-B", options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-10})
    assert res.converged
    assert res.cost <= 1.01 * opt.fun
    assert np.all(np.diff(res.cost_history) <= 0)
    assert res.iterations >= 2  # a nonlinear problem needs more than one Newton step
    # The reported nominal is the model's own rollout of U and its cost.
    np.testing.assert_allclose(res.X, rollout(model, x0, res.U), atol=1e-12)
    np.testing.assert_allclose(res.cost, _shooting_cost_and_grad(model, cost, x0, res.U)[0], rtol=1e-12)
    # At the optimum the open-loop gradient vanishes.
    assert np.abs(_shooting_cost_and_grad(model, cost, x0, res.U)[1]).max() < 1e-4


class _CountingCost:
    """A cost with a cheap ``value``; counts how often each path is taken."""

    def __init__(self, cost) -> None:
        self.cost, self.expansions, self.values = cost, 0, 0

    def expand(self, samples):
        self.expansions += 1
        return self.cost.expand(samples)

    def value(self, samples):
        self.values += 1
        return self.cost.expand(samples).l


def test_line_search_expands_only_the_accepted_candidates():
    """Candidates are judged by the cost's value; only the start and each accepted step are expanded,
    and the result is the one the expansion-only cost gives."""
    model = Pendulum()
    cost = QuadraticStateCost(np.diag([2.0, 0.1]), np.array([[0.05]]), np.array([np.pi, 0.0]))  # swing-up
    counting = _CountingCost(cost)
    x0, U0 = np.array([0.0, 0.0]), np.zeros((60, 1))
    res = ilqg(model, counting, x0, U0, ILQGSettings(tolerance=1e-9))
    assert counting.values > res.iterations  # some candidates were rejected (if only by the last line search) ...
    assert counting.expansions == 1 + res.iterations  # ... and not expanded
    plain = ilqg(model, cost, x0, U0, ILQGSettings(tolerance=1e-9))
    np.testing.assert_allclose(res.U, plain.U, rtol=0, atol=0)


def test_bad_inputs_name_the_field():
    _, system, cost, x0 = _linear_problem()
    model = LinearModel(system)
    with pytest.raises(ValueError, match="x0"):
        ilqg(model, cost, np.zeros(dX + 1), np.zeros((T, dU)))
    with pytest.raises(ValueError, match="U_init"):
        ilqg(model, cost, x0, np.zeros((T, dU + 1)))
    with pytest.raises(ValueError, match="cost_weight"):
        ILQGSettings(cost_weight=0.0)
    with pytest.raises(ValueError, match="alpha_factor"):
        ILQGSettings(alpha_factor=1.5)
    with pytest.raises(ValueError, match="extra.lu"):
        ilqg(model, cost, x0, np.zeros((T, dU)),
             extra=lambda X, U: CostExpansion.zeros(1, T, dX, dU + 1))

    class BadModel(LinearModel):
        def linearize(self, X, U):
            fx, fu, x_next = super().linearize(X, U)
            return fx, fu[:, :, :1], x_next

    with pytest.raises(ValueError, match="model.linearize fu"):
        ilqg(BadModel(system), cost, x0, np.zeros((T, dU)))
    zero = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    with pytest.raises(ValueError, match="weight"):
        gaussian_policy_penalty(zero, np.tile(np.eye(dU), (T, 1, 1)), -np.ones(T))
    with pytest.raises(ValueError, match="precision"):
        gaussian_policy_penalty(zero, np.eye(dU), np.ones(T))
