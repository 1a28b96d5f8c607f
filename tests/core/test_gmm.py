import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gps_ros.core.gmm import GaussianMixture, GMMConfig, fit_gmm, n_clusters_for


def _planted(rng, M=3000):
    means = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, -3.0], [0.0, 9.0, 5.0]])
    A = rng.normal(size=(3, 3, 3))
    covs = A @ np.swapaxes(A, 1, 2) / 3 + 0.2 * np.eye(3)
    weights = np.array([0.5, 0.3, 0.2])
    labels = rng.choice(3, size=M, p=weights)
    points = means[labels] + np.einsum("mij,mj->mi", np.linalg.cholesky(covs)[labels], rng.standard_normal((M, 3)))
    return points, means, covs, weights


def _match(fitted_means, true_means):
    return np.array([np.argmin(np.linalg.norm(fitted_means - mu, axis=1)) for mu in true_means])


def test_em_recovers_planted_clusters():
    rng = np.random.default_rng(1)
    points, means, covs, weights = _planted(rng)
    gmm = fit_gmm(points, 3)
    order = _match(gmm.means, means)
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(gmm.means[order], means, atol=0.15)
    np.testing.assert_allclose(gmm.covariances[order], covs, atol=0.2)
    np.testing.assert_allclose(gmm.weights[order], weights, atol=0.03)


def test_warm_start_from_truth_stays_and_stops_early():
    rng = np.random.default_rng(2)
    points, means, covs, weights = _planted(rng)
    truth = GaussianMixture(weights, means, covs)
    gmm = fit_gmm(points, 3, init=truth, config=GMMConfig(warm_max_iterations=50))
    assert gmm.iterations < 10
    np.testing.assert_allclose(gmm.means, means, atol=0.15)


def test_cluster_count_change_reinitialises():
    rng = np.random.default_rng(3)
    points, means, covs, weights = _planted(rng)
    two = fit_gmm(points, 2)
    three = fit_gmm(points, 3, init=two)
    assert three.n_clusters == 3
    assert sorted(_match(three.means, means)) == [0, 1, 2]


def test_responsibilities_match_scipy_densities():
    rng = np.random.default_rng(4)
    points, means, covs, weights = _planted(rng, M=200)
    gmm = GaussianMixture(weights, means, covs)
    dens = np.stack([w * multivariate_normal(mu, c).pdf(points) for w, mu, c in zip(weights, means, covs)], axis=1)
    np.testing.assert_allclose(gmm.responsibilities(points), dens / dens.sum(1, keepdims=True), atol=1e-9)
    log_dens = np.stack([np.log(w) + multivariate_normal(mu, c).logpdf(points) for w, mu, c in zip(weights, means, covs)], 1)
    np.testing.assert_allclose(gmm.log_joint(points), log_dens, rtol=1e-9, atol=1e-9)


def test_degenerate_data_gives_positive_definite_clusters():
    rng = np.random.default_rng(5)
    points = np.column_stack([rng.normal(size=400), np.full(400, 3.0), rng.normal(size=400)])
    points[:200, 0] += 10.0
    gmm = fit_gmm(points, 6)
    assert np.all(np.isfinite(gmm.means)) and np.all(np.linalg.eigvalsh(gmm.covariances) > 0)
    np.testing.assert_allclose(gmm.weights.sum(), 1.0)


@pytest.mark.parametrize(
    "n_points, expected", [(10, 2), (79, 2), (80, 2), (120, 3), (799, 19), (1980, 20), (10**6, 20)]
)
def test_cluster_count_rule(n_points, expected):
    assert n_clusters_for(n_points, max_clusters=20, min_samples_per_cluster=40) == expected


def test_bad_input_names_the_field():
    points = np.random.default_rng(6).normal(size=(50, 3))
    bad = points.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="points.*finite"):
        fit_gmm(bad, 2)
    with pytest.raises(ValueError, match="n_clusters.*51"):
        fit_gmm(points, 51)
    with pytest.raises(ValueError, match=r"points: expected shape \[\*, \*\]"):
        fit_gmm(points[None], 2)
    init = fit_gmm(points[:, :2], 2)
    with pytest.raises(ValueError, match="init.*dimension 3"):
        fit_gmm(points, 2, init=init)
    with pytest.raises(ValueError, match="tol.*-1"):
        GMMConfig(tol=-1.0)
    with pytest.raises(ValueError, match="covariances.*positive-definite"):
        GaussianMixture(np.ones(1), np.zeros((1, 2)), -np.eye(2)[None])
