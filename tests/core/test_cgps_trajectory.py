import numpy as np
import pytest

from gps_ros.core.cgps_trajectory import (
    CGPSTrajectorySettings, CovarianceUpdateSettings, care_covariance, cgps_trajectory_step, covariance_update,
    dual_update, eq7_feedback,
)
from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.ilqg import ILQGSettings
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.linear_system import QuadraticStateCost, lqr_optimum, random_stable_system
from tests.core.test_ilqg import LinearModel, Pendulum, _riccati_quu

T, dX, dU = 8, 3, 2


def _spd(rng, n, scale=1.0, floor=0.1):
    M = rng.standard_normal((n, n))
    return scale * (M @ M.T / n + floor * np.eye(n))


def _eq8_residual(A, Quu, lam, M):
    res = A @ Quu @ A + (lam - 1) * A - lam * M
    scale = np.abs(A @ Quu @ A).max() + abs(lam - 1) * np.abs(A).max() + lam * np.abs(M).max()
    return np.abs(res).max() / scale


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 4.0, 1e4])
def test_care_covariance_solves_eq8(lam):
    rng = np.random.default_rng(int(lam * 10) + 1)
    Quu, M = _spd(rng, 3), _spd(rng, 3, 0.5)
    A = care_covariance(Quu, lam, M)
    assert np.all(np.linalg.eigvalsh(A) > 0)
    assert _eq8_residual(A, Quu, lam, M) < 1e-8
    if lam == 0.0:
        np.testing.assert_allclose(A, np.linalg.inv(Quu), rtol=1e-10)


def test_care_covariance_matches_the_eigen_closed_form():
    """With L = chol(Q_uu), Y = Lᵀ A L solves Y² + (λ − 1) Y − λ LᵀML = 0: eigenvalues of LᵀML mapped by the PD root."""
    rng = np.random.default_rng(7)
    Quu, M, lam = _spd(rng, 4), _spd(rng, 4, 0.3), 2.5
    L = np.linalg.cholesky(Quu)
    n, V = np.linalg.eigh(L.T @ M @ L)
    y = (-(lam - 1) + np.sqrt((lam - 1) ** 2 + 4 * lam * n)) / 2
    Linv = np.linalg.inv(L)
    np.testing.assert_allclose(care_covariance(Quu, lam, M), Linv.T @ (V * y) @ V.T @ Linv, rtol=1e-9)


def test_care_covariance_scalar_root():
    q, lam, m = 2.0, 3.0, 0.7
    root = (-(lam - 1) + np.sqrt((lam - 1) ** 2 + 4 * q * lam * m)) / (2 * q)
    np.testing.assert_allclose(care_covariance(np.array([[q]]), lam, np.array([[m]])), [[root]], rtol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 3.0])
def test_eq7_feedback_equals_the_papers_form(lam):
    rng = np.random.default_rng(11)
    Quu, A = _spd(rng, dU), _spd(rng, dU, 0.5)
    Qux, K_pi = rng.standard_normal((dU, dX)), rng.standard_normal((dU, dX))
    Ainv = np.linalg.inv(A)
    expected = -np.linalg.inv(Quu + lam * Ainv) @ (Qux - lam * Ainv @ K_pi)
    np.testing.assert_allclose(eq7_feedback(Quu, Qux, A, lam, K_pi), expected, rtol=1e-10, atol=1e-12)


def test_eq7_feedback_tends_to_the_policy_as_a_collapses():
    """A -> 0 (what Eq. 8 gives for lambda > 1 as M -> 0): K -> K^pi, with no A^-1 to overflow."""
    rng = np.random.default_rng(12)
    Quu, Qux, K_pi = _spd(rng, dU), rng.standard_normal((dU, dX)), rng.standard_normal((dU, dX))
    for scale in (1e-4, 1e-10, 0.0):
        A = care_covariance(Quu, 2.0, scale * np.eye(dU)) if scale > 0 else np.zeros((dU, dU))
        K = eq7_feedback(Quu, Qux, A, 2.0, K_pi)
        assert np.all(np.isfinite(K))
        np.testing.assert_allclose(K, K_pi, atol=10 * np.abs(A).max() * np.abs(Quu @ K_pi + Qux).max() + 1e-12)


def _covariance_problem(seed=0):
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    F = np.tile(np.concatenate([system.A, system.B], axis=1), (T, 1, 1))
    W = np.tile(0.01 * np.eye(dX), (T, 1, 1))
    dynamics = LinearGaussianDynamics(F, np.zeros((T, dX)), W)
    H = np.stack([_spd(rng, dX + dU) for _ in range(T)])
    policy = LinearGaussianPolicy(rng.standard_normal((T, dU, dX)), rng.standard_normal((T, dU)),
                                  np.stack([_spd(rng, dU, 0.3) for _ in range(T)]))
    lam = rng.uniform(0.2, 3.0, T)
    r = 0.3 * rng.standard_normal((T, dU))
    return dynamics, H, _spd(rng, dX, 0.2), r, policy, lam


def _laplace_lagrangian(K, A, dynamics, H, sigma1, r, policy, lam):
    """Σ_t ½ tr(Σ_t H_t) − ½ log|A_t| + λ_t/2 [tr(A⁻¹Σ^π) + rᵀA⁻¹r + tr(S (K − K^π)ᵀ A⁻¹ (K − K^π)) + log|A|]."""
    total, S = 0.0, sigma1
    for t in range(T):
        Sigma = np.block([[S, S @ K[t].T], [K[t] @ S, K[t] @ S @ K[t].T + A[t]]])
        Ainv = np.linalg.inv(A[t])
        D = K[t] - policy.K[t]
        logdet = np.linalg.slogdet(A[t])[1]
        total += 0.5 * np.trace(Sigma @ H[t]) - 0.5 * logdet + 0.5 * lam[t] * (
            np.trace(Ainv @ policy.cov[t]) + r[t] @ Ainv @ r[t] + np.trace(S @ D.T @ Ainv @ D) + logdet)
        S = dynamics.F[t] @ Sigma @ dynamics.F[t].T + dynamics.W[t]
    return total


def test_covariance_update_is_a_stationary_point_of_the_laplace_lagrangian():
    dynamics, H, sigma1, r, policy, lam = _covariance_problem()
    K0, A0 = np.zeros((T, dU, dX)), np.tile(np.eye(dU), (T, 1, 1))
    res = covariance_update(dynamics, H, sigma1, r, policy, lam, K0, A0)
    assert res.converged
    args = (dynamics, H, sigma1, r, policy, lam)
    h = 1e-6

    def grad(K, A):
        g = []
        for t in range(T):
            for i in range(dU):
                for j in range(dX):
                    E = np.zeros_like(K)
                    E[t, i, j] = h
                    g.append((_laplace_lagrangian(K + E, A, *args) - _laplace_lagrangian(K - E, A, *args)) / (2 * h))
                for j in range(i, dU):
                    E = np.zeros_like(A)
                    E[t, i, j] = E[t, j, i] = h
                    g.append((_laplace_lagrangian(K, A + E, *args) - _laplace_lagrangian(K, A - E, *args)) / (2 * h))
        return np.array(g)

    g_start, g_end = grad(K0, A0), grad(res.K, res.A)
    assert np.abs(g_end).max() < 1e-6 * np.abs(g_start).max()
    assert _laplace_lagrangian(res.K, res.A, *args) < _laplace_lagrangian(K0, A0, *args)
    # Eq. 8 and Eq. 7 hold at every step (Q_uu, Q_ux from an independent value recursion of Eq. 6).
    V = np.zeros((dX, dX))
    for t in range(T - 1, -1, -1):
        Q = H[t] + dynamics.F[t].T @ V @ dynamics.F[t]
        Quu, Qux, Qxx = Q[dX:, dX:], Q[dX:, :dX], Q[:dX, :dX]
        assert _eq8_residual(res.A[t], Quu, lam[t], res.M[t]) < 1e-8
        Ainv = np.linalg.inv(res.A[t])
        K_eq7 = -np.linalg.solve(Quu + lam[t] * Ainv, Qux - lam[t] * Ainv @ policy.K[t])
        np.testing.assert_allclose(res.K[t], K_eq7, rtol=1e-6, atol=1e-8)
        K, D = res.K[t], res.K[t] - policy.K[t]
        V = Qxx + K.T @ Qux + Qux.T @ K + K.T @ Quu @ K + lam[t] * D.T @ Ainv @ D


def _linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    cost = QuadraticStateCost(np.diag([1.0, 0.5, 2.0]), np.diag([0.1, 0.3]), rng.standard_normal(dX))
    return rng, system, cost, InitialStateDistribution(rng.standard_normal(dX), 0.01 * np.eye(dX))


def test_zero_multipliers_give_the_max_entropy_lqr_solution():
    rng, system, cost, x1 = _linear_problem()
    q = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    policy = LinearGaussianPolicy(rng.standard_normal((T, dU, dX)), rng.standard_normal((T, dU)),
                                  np.tile(0.5 * np.eye(dU), (T, 1, 1)))
    settings = CGPSTrajectorySettings(ddp=ILQGSettings(max_iterations=1, mu_init=0.0, cost_weight=2.0))
    res = cgps_trajectory_step(LinearModel(system), cost, x1, q, policy, np.zeros(T), settings)
    K, k, _ = lqr_optimum(system, cost, x1)
    np.testing.assert_allclose(res.q.K, K, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.q.k, k, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.q.cov, np.linalg.inv(2.0 * _riccati_quu(system, cost.Q, cost.R)), rtol=1e-8)
    np.testing.assert_allclose(res.traj.mu_x, res.X, atol=1e-10)


def test_mean_update_reaches_the_lqr_solution_from_any_start():
    """On a linear system with quadratic cost one Newton step from any actions U_start is the optimum."""
    rng, system, cost, x1 = _linear_problem()
    q = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    policy = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    settings = CGPSTrajectorySettings(ddp=ILQGSettings(max_iterations=1, mu_init=0.0))
    U_start = 5.0 * rng.standard_normal((T, dU))
    res = cgps_trajectory_step(LinearModel(system), cost, x1, q, policy, np.zeros(T), settings, U_start=U_start)
    K, k, _ = lqr_optimum(system, cost, x1)
    np.testing.assert_allclose(res.q.K, K, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.q.k, k, rtol=1e-8, atol=1e-10)
    assert res.mean.cost_history[0] > res.mean.cost_history[-1]
    with pytest.raises(ValueError, match=r"U_start: expected shape"):
        cgps_trajectory_step(LinearModel(system), cost, x1, q, policy, np.zeros(T), settings, U_start=U_start[:-1])


def test_large_multipliers_pull_q_onto_the_policy():
    rng, system, cost, x1 = _linear_problem(1)
    q = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    policy = LinearGaussianPolicy(0.2 * rng.standard_normal((T, dU, dX)), rng.standard_normal((T, dU)),
                                  np.tile(np.diag([0.2, 0.4]), (T, 1, 1)))
    settings = CGPSTrajectorySettings(ddp=ILQGSettings(max_iterations=20))
    res = cgps_trajectory_step(LinearModel(system), cost, x1, q, policy, np.full(T, 1e6), settings)
    np.testing.assert_allclose(res.q.K, policy.K, atol=1e-4)
    np.testing.assert_allclose(res.q.k, policy.k, atol=1e-4)
    np.testing.assert_allclose(res.q.cov, policy.cov, atol=1e-4)
    assert res.kl.max() < 1e-6


def test_dual_descent_on_the_pendulum_meets_the_kl_target():
    """Steps of Alg. 2 alternated with Eq. 2 against a fixed linear policy bring every KL_t under the target,
    after which the multipliers relax."""
    model, Tp = Pendulum(), 30
    cost = QuadraticStateCost(np.diag([2.0, 0.1]), np.array([[0.05]]), np.array([np.pi / 2, 0.0]))
    x1 = InitialStateDistribution(np.zeros(2), 1e-4 * np.eye(2))
    policy = LinearGaussianPolicy(np.tile([[-3.0, -1.0]], (Tp, 1, 1)), np.full((Tp, 1), 4.0),
                                  np.tile([[0.5]], (Tp, 1, 1)))
    q = LinearGaussianPolicy(np.zeros((Tp, 1, 2)), np.zeros((Tp, 1)), np.tile([[1.0]], (Tp, 1, 1)))
    lam, target = np.zeros(Tp), 0.05
    settings = CGPSTrajectorySettings(ddp=ILQGSettings(max_iterations=3), covariance=CovarianceUpdateSettings())
    kl_max, lam_max = [], []
    for _ in range(6):
        res = cgps_trajectory_step(model, cost, x1, q, policy, lam, settings)
        assert res.covariance.converged
        lam = dual_update(lam, res.kl, target, step=20.0)
        q = res.q
        kl_max.append(res.kl.max())
        lam_max.append(lam.max())
    assert kl_max[0] > 10 * target
    assert max(kl_max[2:]) < target
    assert np.all(np.diff(lam_max[2:]) < 0) and np.all(lam >= 0)


def test_dual_update_moves_multipliers_toward_the_target():
    lam = np.array([0.0, 1.0, 1.0, 0.1, 2.0])
    kl = np.array([0.5, 0.5, 0.05, 0.0, 0.1])
    new = dual_update(lam, kl, 0.1, step=2.0)
    np.testing.assert_allclose(new, [0.8, 1.8, 0.9, 0.0, 2.0])
    assert new[1] > lam[1] and new[2] < lam[2] and new[3] == 0.0
    np.testing.assert_allclose(dual_update(lam, kl, np.full(5, 0.5), 1.0), [0.0, 1.0, 0.55, 0.0, 1.6])


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="lam"):
        dual_update(np.array([-1.0, 0.0]), np.zeros(2), 0.1, 1.0)
    with pytest.raises(ValueError, match="kl"):
        dual_update(np.zeros(2), np.zeros(3), 0.1, 1.0)
    with pytest.raises(ValueError, match="kl_target"):
        dual_update(np.zeros(2), np.zeros(2), -0.1, 1.0)
    with pytest.raises(ValueError, match="step"):
        dual_update(np.zeros(2), np.zeros(2), 0.1, 0.0)
    with pytest.raises(ValueError, match="max_inner_iterations"):
        CovarianceUpdateSettings(max_inner_iterations=0)
    dynamics, H, sigma1, r, policy, lam = _covariance_problem()
    K0, A0 = np.zeros((T, dU, dX)), np.tile(np.eye(dU), (T, 1, 1))
    with pytest.raises(ValueError, match="cost_hessian"):
        covariance_update(dynamics, H[:, :dX], sigma1, r, policy, lam, K0, A0)
    with pytest.raises(ValueError, match="A_init"):
        covariance_update(dynamics, H, sigma1, r, policy, lam, K0, -A0)
    with pytest.raises(ValueError, match="mean_residual"):
        covariance_update(dynamics, H, sigma1, r[:, :1], policy, lam, K0, A0)
    _, system, cost, x1 = _linear_problem()
    q = LinearGaussianPolicy(K0, np.zeros((T, dU)), A0)
    with pytest.raises(ValueError, match="lam"):
        cgps_trajectory_step(LinearModel(system), cost, x1, q, policy, np.zeros(T + 1))
    with pytest.raises(ValueError, match="policy.K"):
        cgps_trajectory_step(LinearModel(system), cost, x1, q,
                             LinearGaussianPolicy(K0[:-1], np.zeros((T - 1, dU)), A0[:-1]), np.zeros(T))


def test_a_step_whose_q_uu_is_not_positive_definite_keeps_its_k_and_a():
    """An indefinite action block in the last step's cost Hessian (where Q_uu = ℓ_uu): that step keeps
    K_init and A_init, and every earlier step still satisfies Eq. 7 and Eq. 8 under the value
    recursion (Eq. 6) through it."""
    dynamics, H, sigma1, r, policy, lam = _covariance_problem()
    rng = np.random.default_rng(5)
    K0, A0 = 0.1 * rng.standard_normal((T, dU, dX)), np.tile(np.eye(dU), (T, 1, 1))
    assert covariance_update(dynamics, H, sigma1, r, policy, lam, K0, A0).kept_steps == 0
    H = H.copy()
    H[-1, dX:, dX:] = np.diag(np.linspace(-1.0, 1.0, dU))
    res = covariance_update(dynamics, H, sigma1, r, policy, lam, K0, A0)
    assert res.kept_steps == 1 and res.converged
    np.testing.assert_array_equal(res.K[-1], K0[-1])
    np.testing.assert_array_equal(res.A[-1], A0[-1])
    V = np.zeros((dX, dX))
    for t in range(T - 1, -1, -1):
        Q = H[t] + dynamics.F[t].T @ V @ dynamics.F[t]
        Quu, Qux, Qxx = Q[dX:, dX:], Q[dX:, :dX], Q[:dX, :dX]
        Ainv = np.linalg.inv(res.A[t])
        if t < T - 1:
            assert _eq8_residual(res.A[t], Quu, lam[t], res.M[t]) < 1e-8
            K_eq7 = -np.linalg.solve(Quu + lam[t] * Ainv, Qux - lam[t] * Ainv @ policy.K[t])
            np.testing.assert_allclose(res.K[t], K_eq7, rtol=1e-6, atol=1e-8)
        K, D = res.K[t], res.K[t] - policy.K[t]
        V = Qxx + K.T @ Qux + Qux.T @ K + K.T @ Quu @ K + lam[t] * D.T @ Ainv @ D
