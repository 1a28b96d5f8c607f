import numpy as np
import pytest

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.dynamics import InitialStateDistribution
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.linear_system import QuadraticStateCost, random_stable_system
from gps_ros.core.traj_distribution import QuadraticCost, expected_cost, forward

T, dX, dU = 8, 4, 2


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    A = rng.standard_normal((T, dU, dU))
    policy = LinearGaussianPolicy(
        0.3 * rng.standard_normal((T, dU, dX)), rng.standard_normal((T, dU)), 0.2 * A @ A.transpose(0, 2, 1) + 0.1 * np.eye(dU)
    )
    S = rng.standard_normal((dX, dX))
    x1 = InitialStateDistribution(rng.standard_normal(dX), 0.1 * S @ S.T + 0.05 * np.eye(dX))
    return rng, system, policy, x1


def _monte_carlo(rng, system, policy, x1, N=50_000):
    x0 = rng.multivariate_normal(x1.mu, x1.sigma, size=N)
    return system.rollout(policy, x0, rng.standard_normal((N, T, dU)), rng)


def test_forward_marginals_match_monte_carlo():
    rng, system, policy, x1 = _setup()
    traj = forward(policy, system.dynamics(), x1)
    samples = _monte_carlo(rng, system, policy, x1)
    Z = np.concatenate([samples.X, samples.U], axis=2)
    scale = np.sqrt(np.diagonal(traj.sigma, axis1=1, axis2=2))
    np.testing.assert_allclose((Z.mean(0) - traj.mu) / scale, 0.0, atol=0.02)
    emp = np.einsum("nti,ntj->tij", Z - Z.mean(0), Z - Z.mean(0)) / len(Z)
    np.testing.assert_allclose(emp / (scale[:, :, None] * scale[:, None, :]),
                               traj.sigma / (scale[:, :, None] * scale[:, None, :]), atol=0.02)


def test_expected_cost_matches_monte_carlo():
    rng, system, policy, x1 = _setup(1)
    cost = QuadraticStateCost(np.diag([1.0, 2.0, 0.5, 0.3]), np.diag([0.2, 0.1]), rng.standard_normal(dX))
    analytic = expected_cost(forward(policy, system.dynamics(), x1), cost.quadratic(T))
    samples = _monte_carlo(rng, system, policy, x1)
    l = cost.expand(samples).l
    np.testing.assert_allclose(analytic, l.mean(0), atol=4 * l.std(0).max() / np.sqrt(len(l)))


def test_from_expansion_recentres_each_sample():
    # A quadratic expanded at any points is the same quadratic: the average must equal it.
    rng, system, policy, x1 = _setup(2)
    cost = QuadraticStateCost(np.diag([1.0, 2.0, 0.5, 0.3]), np.diag([0.2, 0.1]), rng.standard_normal(dX))
    samples = _monte_carlo(rng, system, policy, x1, N=3)
    q = QuadraticCost.from_expansion(cost.expand(samples), samples.X, samples.U)
    z = rng.standard_normal(dX + dU)
    value = 0.5 * z @ q.Lzz[3] @ z + q.lz[3] @ z + q.c[3]
    dx = z[:dX] - cost.target
    np.testing.assert_allclose(value, 0.5 * dx @ cost.Q @ dx + 0.5 * z[dX:] @ cost.R @ z[dX:])


def test_from_expansion_averages_nonquadratic_expansions():
    # Two samples of ℓ = x⁴ (dX = dU = 1), each expanded at its own point: the result is the mean of the two Taylor models.
    X = np.array([[[1.0]], [[2.0]]])
    U = np.zeros((2, 1, 1))
    expansion = CostExpansion(X[..., 0] ** 4, 4 * X**3, np.zeros((2, 1, 1)), 12 * X[..., None] ** 2,
                              np.zeros((2, 1, 1, 1)), np.zeros((2, 1, 1, 1)))
    q = QuadraticCost.from_expansion(expansion, X, U)
    x = 1.3
    taylor = [a**4 + 4 * a**3 * (x - a) + 6 * a**2 * (x - a) ** 2 for a in (1.0, 2.0)]
    np.testing.assert_allclose(0.5 * q.Lzz[0, 0, 0] * x**2 + q.lz[0, 0] * x + q.c[0], np.mean(taylor))


def test_bad_input_names_the_field():
    rng, system, policy, x1 = _setup()
    short = random_stable_system(rng, T - 1, dX, dU).dynamics()
    with pytest.raises(ValueError, match=r"dynamics: expected T=8, dX=4, dU=2 .* got T=7"):
        forward(policy, short, x1)
    with pytest.raises(ValueError, match=r"x1.mu: expected shape \[4\]"):
        forward(policy, system.dynamics(), InitialStateDistribution(np.zeros(3), np.eye(3)))
    with pytest.raises(ValueError, match=r"lz: expected shape \[8, \*\]"):
        QuadraticCost(np.zeros(8), np.zeros((7, 6)), np.zeros((8, 6, 6)))
