import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gps_ros.core.dynamics import InitialStateDistribution
from gps_ros.core.kl import policy_kl
from gps_ros.core.kl_lqr import CStepConfig, kl_constrained_lqr
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.linear_system import QuadraticStateCost, random_stable_system
from gps_ros.core.traj_distribution import QuadraticCost, expected_cost, forward

T, dX, dU = 15, 4, 2


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    cost = QuadraticStateCost(np.diag([1.0, 0.5, 2.0, 0.2]), np.diag([0.1, 0.3]), rng.standard_normal(dX))
    x1 = InitialStateDistribution(rng.standard_normal(dX), 0.01 * np.eye(dX))
    p_bar = LinearGaussianPolicy(0.1 * rng.standard_normal((T, dU, dX)), 0.1 * rng.standard_normal((T, dU)),
                                 np.tile(0.5 * np.eye(dU), (T, 1, 1)))
    return rng, system, cost, x1, p_bar


def _riccati(A, B, c, Q, R, target, T):
    """Textbook finite-horizon LQR for ½(x − target)ᵀQ(x − target) + ½uᵀRu, x' = Ax + Bu + c."""
    P, p = np.zeros_like(A), np.zeros(len(A))
    K, k = [], []
    for _ in range(T):
        H = R + B.T @ P @ B
        Kt = -np.linalg.solve(H, B.T @ P @ A)
        kt = -np.linalg.solve(H, B.T @ (P @ c + p))
        p = Q @ -target + Kt.T @ R @ kt + (A + B @ Kt).T @ (P @ (B @ kt + c) + p)
        P = Q + (A + B @ Kt).T @ P @ (A + B @ Kt) + Kt.T @ R @ Kt
        K.append(Kt)
        k.append(kt)
    return np.array(K[::-1]), np.array(k[::-1])


def test_inactive_constraint_gives_the_plain_lqr_gains():
    _, system, cost, x1, p_bar = _problem()
    result = kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T), p_bar, epsilon=1e8)
    K, k = _riccati(system.A, system.B, system.c, cost.Q, cost.R, cost.target, T)
    assert not result.active
    np.testing.assert_allclose(result.policy.K, K, atol=1e-6)
    np.testing.assert_allclose(result.policy.k, k, atol=1e-6)


@pytest.mark.parametrize("epsilon", [0.5, 5.0, 50.0])
def test_active_constraint_meets_epsilon_and_monte_carlo_kl(epsilon):
    rng, system, cost, x1, p_bar = _problem(1)
    result = kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T), p_bar, epsilon)
    assert result.active and result.converged
    assert abs(result.kl - epsilon) <= 0.1 * epsilon
    # Monte-Carlo: E_p[Σ_t log p(u_t|x_t) − log p̄(u_t|x_t)] over trajectories sampled from p.
    N = 20_000
    samples = system.rollout(result.policy, rng.multivariate_normal(x1.mu, x1.sigma, N), rng.standard_normal((N, T, dU)), rng)
    log_ratio = np.zeros(N)
    for t in range(T):
        for pol, sign in ((result.policy, 1.0), (p_bar, -1.0)):
            mean = samples.X[:, t] @ pol.K[t].T + pol.k[t]
            log_ratio += sign * multivariate_normal(np.zeros(dU), pol.cov[t]).logpdf(samples.U[:, t] - mean)
    assert abs(log_ratio.mean() - result.kl) <= 4 * log_ratio.std() / np.sqrt(N) + 1e-3 * result.kl


def test_result_minimises_the_lagrangian():
    # At η the C-step policy minimises E[ℓ] + η KL(p ‖ p̄): random perturbations of K, k, C must not lower it.
    rng, system, cost, x1, p_bar = _problem(2)
    dynamics, quadratic = system.dynamics(), cost.quadratic(T)
    result = kl_constrained_lqr(dynamics, x1, quadratic, p_bar, 5.0)

    def lagrangian(p):
        traj = forward(p, dynamics, x1)
        return expected_cost(traj, quadratic).sum() + result.eta * policy_kl(p, p_bar, traj)

    best = lagrangian(result.policy)
    p = result.policy
    for _ in range(20):
        L = np.eye(dU) + 0.05 * rng.standard_normal((T, dU, dU))
        perturbed = LinearGaussianPolicy(p.K + 0.01 * rng.standard_normal(p.K.shape), p.k + 0.01 * rng.standard_normal(p.k.shape),
                                         L @ p.cov @ L.transpose(0, 2, 1))
        assert lagrangian(perturbed) > best


def test_non_pd_quu_raises_eta_instead_of_crashing():
    # A cost concave in u: Q_uu = −I/η + C̄⁻¹ is not PD for small η.
    _, system, cost, x1, p_bar = _problem(3)
    q = cost.quadratic(T)
    Lzz = q.Lzz.copy()
    Lzz[:, dX:, dX:] = -np.eye(dU)
    concave = QuadraticCost(q.c, q.lz, Lzz)
    result = kl_constrained_lqr(system.dynamics(), x1, concave, p_bar, 50.0, eta_start=1e-3)
    assert result.eta_raised
    assert result.eta > 0.5  # C̄⁻¹ = 2 I, so Q_uu is PD only for η > 1/2
    assert np.all(np.linalg.eigvalsh(result.policy.cov) > 0)
    if result.active:
        assert abs(result.kl - 50.0) <= 5.0


def test_bad_input_names_the_field():
    _, system, cost, x1, p_bar = _problem()
    with pytest.raises(ValueError, match="epsilon: expected a positive number, got 0"):
        kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T), p_bar, 0.0)
    with pytest.raises(ValueError, match=r"cost.lz: expected shape \[15, 6\]"):
        kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T - 1), p_bar, 1.0)
    with pytest.raises(ValueError, match="dynamics: expected T=15"):
        kl_constrained_lqr(random_stable_system(np.random.default_rng(0), T + 1, dX, dU).dynamics(), x1,
                           cost.quadratic(T), p_bar, 1.0)
    with pytest.raises(ValueError, match="kl_tolerance"):
        CStepConfig(kl_tolerance=1.5)


@pytest.mark.parametrize(
    ("sigma", "message"),
    [
        (np.diag([1.0, 1.0, -1.0, 1.0]), "x1.sigma: expected positive-definite"),
        (np.eye(dX) + np.triu(np.ones((dX, dX)), 1), "x1.sigma: expected symmetric"),
    ],
)
def test_bad_initial_state_covariance_names_the_field(sigma, message):
    _, system, cost, x1, p_bar = _problem()
    bad = InitialStateDistribution(x1.mu, sigma)
    with pytest.raises(ValueError, match=message):
        kl_constrained_lqr(system.dynamics(), bad, cost.quadratic(T), p_bar, 1.0)
