import numpy as np
import pytest

from gps_ros.core.dynamics_fit import fit_dynamics, fit_initial_state, fit_linearized_policy
from gps_ros.core.priors import DynamicsPriorConfig, DynamicsPriorGMM, PolicyPriorConfig, PolicyPriorGMM


def _random_system(rng, dX, dU, T, time_varying=True):
    """Stable linear-Gaussian dynamics: F [T, dX, dX+dU], f [T, dX], W [T, dX, dX]."""
    steps = T if time_varying else 1
    A = rng.normal(size=(steps, dX, dX))
    A *= 0.8 / np.abs(np.linalg.eigvals(A)).max(axis=1)[:, None, None]
    B = rng.normal(size=(steps, dX, dU))
    L = 0.1 * rng.normal(size=(steps, dX, dX))
    W = L @ np.swapaxes(L, 1, 2) + 0.01 * np.eye(dX)
    f = rng.normal(size=(steps, dX))
    F = np.concatenate([A, B], axis=2)
    return tuple(np.broadcast_to(a, (T,) + a.shape[1:]).copy() for a in (F, f, W))


def _rollouts(rng, system, N, u_scale=1.0):
    F, f, W = system
    T, dX = f.shape
    dU = F.shape[2] - dX
    X = np.empty((N, T, dX))
    U = u_scale * rng.normal(size=(N, T, dU))
    X[:, 0] = rng.normal(size=(N, dX))
    chol = np.linalg.cholesky(W)
    for t in range(T - 1):
        z = np.concatenate([X[:, t], U[:, t]], axis=1)
        X[:, t + 1] = z @ F[t].T + f[t] + rng.normal(size=(N, dX)) @ chol[t].T
    return X, U


def test_recovers_known_linear_gaussian_system():
    rng = np.random.default_rng(0)
    system = _random_system(rng, dX=3, dU=2, T=6)
    X, U = _rollouts(rng, system, N=20000)
    dyn = fit_dynamics(X, U, prior=None)
    F, f, W = system
    np.testing.assert_allclose(dyn.F[:-1], F[:-1], atol=0.01)
    np.testing.assert_allclose(dyn.f[:-1], f[:-1], atol=0.01)
    np.testing.assert_allclose(dyn.W[:-1], W[:-1], atol=0.01)
    # The last step has no successor: it repeats the one before.
    np.testing.assert_array_equal(dyn.F[-1], dyn.F[-2])
    np.testing.assert_array_equal(dyn.W[-1], dyn.W[-2])


def test_plain_fit_equals_least_squares():
    rng = np.random.default_rng(1)
    system = _random_system(rng, dX=3, dU=2, T=4)
    X, U = _rollouts(rng, system, N=40)
    dyn = fit_dynamics(X, U, prior=None, regularization=0.0)
    for t in range(3):
        Z = np.column_stack([X[:, t], U[:, t], np.ones(40)])
        coef, *_ = np.linalg.lstsq(Z, X[:, t + 1], rcond=None)
        resid = X[:, t + 1] - Z @ coef
        np.testing.assert_allclose(dyn.F[t], coef[:-1].T, atol=1e-9)
        np.testing.assert_allclose(dyn.f[t], coef[-1], atol=1e-9)
        np.testing.assert_allclose(dyn.W[t], resid.T @ resid / 40, atol=1e-9)


def _fitted_prior(rng, system, N, **config):
    prior = DynamicsPriorGMM(DynamicsPriorConfig(**config))
    prior.update(*_rollouts(rng, system, N))
    return prior


def test_prior_fit_approaches_plain_regression_with_plenty_of_data():
    rng = np.random.default_rng(2)
    system = _random_system(rng, dX=3, dU=2, T=8, time_varying=False)
    prior = _fitted_prior(rng, system, N=20)
    gaps = []
    for N in (20, 2000):
        X, U = _rollouts(rng, system, N)
        gaps.append(np.abs(fit_dynamics(X, U, prior).F - fit_dynamics(X, U, None).F).max())
    assert gaps[1] < 2e-3
    assert gaps[1] < gaps[0] / 10


def test_prior_beats_ridge_regression_with_little_data():
    rng = np.random.default_rng(3)
    dX, dU = 5, 3
    system = _random_system(rng, dX=dX, dU=dU, T=30, time_varying=False)
    prior = _fitted_prior(rng, system, N=20)
    F_true = system[0][:-1]
    errors_prior, errors_ridge = [], []
    for _ in range(3):
        X, U = _rollouts(rng, system, N=4)  # 4 samples for dX + dU = 8 regressors
        errors_prior.append(np.abs(fit_dynamics(X, U, prior).F[:-1] - F_true).mean())
        errors_ridge.append(np.abs(fit_dynamics(X, U, None, regularization=1e-2).F[:-1] - F_true).mean())
    assert np.mean(errors_prior) < 0.3 * np.mean(errors_ridge)


def test_huge_prior_strength_gives_the_prior_conditional():
    rng = np.random.default_rng(4)
    system = _random_system(rng, dX=3, dU=2, T=10, time_varying=False)
    prior = _fitted_prior(rng, system, N=20, strength=1e9)
    X, U = _rollouts(rng, system, N=5)
    dyn = fit_dynamics(X, U, prior, regularization=0.0)
    t = 4
    _, Phi, _, _ = prior.eval(np.concatenate([X[:, t], U[:, t], X[:, t + 1]], axis=1))
    gain = np.linalg.solve(Phi[:5, :5], Phi[:5, 5:]).T
    np.testing.assert_allclose(dyn.F[t], gain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dyn.W[t], Phi[5:, 5:] - gain @ Phi[:5, 5:], rtol=1e-5, atol=1e-7)


def _niw_map(points, mu0, Phi, m, n0):
    """ALGORITHM_NOTES: mu = mean, Sigma = (N S + m Phi + N m / (N + m) (mu - mu0)(mu - mu0)^T) / (N + n0)."""
    N = len(points)
    mean = points.mean(axis=0)
    S = np.cov(points.T, bias=True)
    d = mean - mu0
    return mean, (N * S + m * Phi + N * m / (N + m) * np.outer(d, d)) / (N + n0)


def _conditional(mean, Sigma, n_in):
    """N(mean, Sigma) conditioned on its first n_in entries: gain, bias, covariance."""
    gain = Sigma[n_in:, :n_in] @ np.linalg.inv(Sigma[:n_in, :n_in])
    return gain, mean[n_in:] - gain @ mean[:n_in], Sigma[n_in:, n_in:] - gain @ Sigma[:n_in, :n_in] @ gain.T


def test_moderate_prior_matches_the_niw_map_formula():
    rng = np.random.default_rng(9)
    dX, dU, t = 3, 2, 5
    system = _random_system(rng, dX=dX, dU=dU, T=10)
    prior = _fitted_prior(rng, system, N=20, strength=3.0)
    X, U = _rollouts(rng, system, N=4)
    dyn = fit_dynamics(X, U, prior, regularization=0.0)
    points = np.concatenate([X[:, t], U[:, t], X[:, t + 1]], axis=1)
    mu0, Phi, m, n0 = prior.eval(points)
    assert (m, n0) == (3.0, 3.0)
    F, f, W = _conditional(*_niw_map(points, mu0, Phi, m, n0), dX + dU)
    np.testing.assert_allclose(dyn.F[t], F, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dyn.f[t], f, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dyn.W[t], W, rtol=1e-8, atol=1e-12)

    policy_prior = PolicyPriorGMM(PolicyPriorConfig(strength=3.0))
    K_true = rng.normal(size=(dU, dX))
    policy_prior.update(X, X @ K_true.T)
    U_mean = X @ K_true.T + 0.1 * rng.normal(size=(4, 10, dU))
    pol = fit_linearized_policy(X, U_mean, np.eye(dU), policy_prior, regularization=0.0)
    points = np.concatenate([X[:, t], U_mean[:, t]], axis=1)
    K, k, _ = _conditional(*_niw_map(points, *policy_prior.eval(points)), dX)
    np.testing.assert_allclose(pol.K[t], K, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pol.k[t], k, rtol=1e-8, atol=1e-10)


def test_prior_eval_moment_matches_the_mixture():
    rng = np.random.default_rng(5)
    system = _random_system(rng, dX=2, dU=1, T=10)
    prior = _fitted_prior(rng, system, N=20, max_clusters=4, min_samples_per_cluster=20)
    gmm = prior.gmm
    X, U = _rollouts(rng, system, N=6)
    points = np.concatenate([X[:, 3], U[:, 3], X[:, 4]], axis=1)
    mu0, Phi, m, n0 = prior.eval(points)
    w = gmm.responsibilities(points).mean(axis=0)
    # Monte-Carlo: sample the mixture with weights w and compare its moments.
    labels = rng.choice(len(w), size=400000, p=w)
    draws = gmm.means[labels] + np.einsum("nij,nj->ni", gmm.chol[labels], rng.standard_normal((len(labels), 5)))
    np.testing.assert_allclose(mu0, draws.mean(axis=0), atol=0.02 * np.sqrt(np.diag(Phi)).max())
    np.testing.assert_allclose(Phi, np.cov(draws.T), atol=0.02 * np.abs(Phi).max())
    assert (m, n0) == (1.0, 1.0)


def test_linearized_policy_recovers_known_linear_policy():
    rng = np.random.default_rng(6)
    T, dX, dU, N = 5, 4, 2, 12
    K, k = rng.normal(size=(T, dU, dX)), rng.normal(size=(T, dU))
    X = rng.normal(size=(N, T, dX))
    U_mean = np.einsum("tux,ntx->ntu", K, X) + k
    policy_cov = np.diag([0.3, 0.2])
    pol = fit_linearized_policy(X, U_mean, policy_cov, prior=None, regularization=1e-10)
    np.testing.assert_allclose(pol.K, K, atol=1e-6)
    np.testing.assert_allclose(pol.k, k, atol=1e-6)
    np.testing.assert_array_equal(pol.cov, np.broadcast_to(policy_cov, (T, dU, dU)))


def test_linearized_policy_with_prior_from_few_samples():
    rng = np.random.default_rng(7)
    T, dX, dU = 20, 4, 2
    K, k = rng.normal(size=(dU, dX)), rng.normal(size=dU)

    def visit(N):
        X = rng.normal(size=(N, T, dX))
        return X, X @ K.T + k

    prior = PolicyPriorGMM(PolicyPriorConfig())
    prior.update(*visit(20))
    X, U_mean = visit(3)  # fewer samples than dX + 1
    pol = fit_linearized_policy(X, U_mean, np.tile(0.1 * np.eye(dU), (T, 1, 1)), prior)
    np.testing.assert_allclose(pol.K, np.broadcast_to(K, (T, dU, dX)), atol=0.05)
    np.testing.assert_allclose(pol.k, np.broadcast_to(k, (T, dU)), atol=0.05)


def test_initial_state_monte_carlo_and_floor():
    rng = np.random.default_rng(8)
    mu = np.array([1.0, -2.0, 0.5])
    A = rng.normal(size=(3, 3))
    sigma = A @ A.T + 0.1 * np.eye(3)
    X = np.zeros((40000, 2, 3))
    X[:, 0] = rng.multivariate_normal(mu, sigma, size=40000)
    init = fit_initial_state(X, floor=1e-6)
    np.testing.assert_allclose(init.mu, mu, atol=0.05)
    np.testing.assert_allclose(init.sigma, sigma, atol=0.1)
    single = fit_initial_state(X[:1], floor=0.25)
    np.testing.assert_array_equal(single.mu, X[0, 0])
    np.testing.assert_array_equal(single.sigma, 0.25 * np.eye(3))


def test_buffer_is_bounded_and_clusters_adapt():
    rng = np.random.default_rng(9)
    system = _random_system(rng, dX=2, dU=1, T=11)
    prior = DynamicsPriorGMM(DynamicsPriorConfig(max_samples=6, min_samples_per_cluster=10, max_clusters=5))
    batches = [_rollouts(rng, system, N=4) for _ in range(3)]
    expected_clusters = [4, 5, 5]  # 40 tuples -> 4; 60 -> min(5, 6)
    for (X, U), clusters in zip(batches, expected_clusters):
        prior.update(X, U)
        assert prior.gmm.n_clusters == clusters
    assert prior.n_buffered == 6
    np.testing.assert_array_equal(prior.X, np.concatenate([batches[1][0], batches[2][0]])[-6:])
    np.testing.assert_array_equal(prior.U, np.concatenate([batches[1][1], batches[2][1]])[-6:])


def test_bad_input_names_the_field_and_changes_nothing():
    rng = np.random.default_rng(10)
    system = _random_system(rng, dX=3, dU=2, T=6)
    X, U = _rollouts(rng, system, N=8)
    with pytest.raises(ValueError, match=r"U: expected shape \[8, 6, \*\]"):
        fit_dynamics(X, U[:, :5])
    bad = X.copy()
    bad[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match="X: expected finite"):
        fit_dynamics(bad, U)
    with pytest.raises(ValueError, match="X: expected at least 6 samples.*N=4"):
        fit_dynamics(X[:4], U[:4], prior=None, regularization=0.0)
    with pytest.raises(ValueError, match="regularization.*-1"):
        fit_dynamics(X, U, regularization=-1.0)
    with pytest.raises(ValueError, match="prior: expected a DynamicsPriorGMM"):
        fit_dynamics(X, U, prior=PolicyPriorGMM())
    with pytest.raises(ValueError, match="prior: not fitted"):
        fit_dynamics(X, U, prior=DynamicsPriorGMM())
    with pytest.raises(ValueError, match=r"policy_cov: expected shape \[6, 2, 2\] or \[2, 2\]"):
        fit_linearized_policy(X, U, np.eye(3))
    with pytest.raises(ValueError, match="policy_cov: expected positive-definite"):
        fit_linearized_policy(X, U, -np.eye(2))
    with pytest.raises(ValueError, match="max_samples.*0"):
        DynamicsPriorConfig(max_samples=0)

    prior = _fitted_prior(rng, system, N=8)
    before = (prior.X.copy(), prior.U.copy(), prior.gmm)
    for args, field in [((bad, U), "X"), ((X, U[..., :1]), "U"), ((X[:, :5], U[:, :5]), "X, U")]:
        with pytest.raises(ValueError, match=field):
            prior.update(*args)
        np.testing.assert_array_equal(prior.X, before[0])
        np.testing.assert_array_equal(prior.U, before[1])
        assert prior.gmm is before[2]
    other = _fitted_prior(rng, _random_system(rng, dX=2, dU=2, T=6), N=8)
    with pytest.raises(ValueError, match="prior: expected one fitted on tuples of dimension 8, got dimension 6"):
        fit_dynamics(X, U, prior=other)
