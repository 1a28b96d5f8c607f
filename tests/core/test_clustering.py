"""Trajectory-aware clustering against planted mixtures of linear-Gaussian trajectory distributions."""

import numpy as np
import pytest

from gps_ros.core.clustering import ClusteringConfig, cluster_trajectories, trajectory_log_likelihood

T, dX, dU = 8, 2, 1
POLICY_COV = 0.05 * np.eye(dU)


def _planted(n_per_cluster: int, seed: int):
    """Trajectories of 3 known systems; returns X, U, U_mean and the true labels."""
    rng = np.random.default_rng(seed)
    systems = [
        (np.array([[1.0, 0.1], [0.0, 0.9]]), np.array([[0.0], [0.2]]), np.array([[-1.0, -0.5]]), np.array([0.3]), np.array([1.0, 0.0])),
        (np.array([[0.8, -0.3], [0.3, 0.8]]), np.array([[0.2], [0.0]]), np.array([[0.5, 0.2]]), np.array([-0.4]), np.array([-1.0, 1.0])),
        (np.array([[1.1, 0.0], [0.2, 0.7]]), np.array([[-0.1], [0.3]]), np.array([[0.0, -1.2]]), np.array([0.0]), np.array([0.0, -1.0])),
    ]
    X, U, Um, labels = [], [], [], []
    for label, (A, B, Kp, kp, mu1) in enumerate(systems):
        for _ in range(n_per_cluster):
            x = mu1 + 0.1 * rng.standard_normal(dX)
            xs, us, ums = [], [], []
            for _ in range(T):
                um = Kp @ x + kp
                u = um + np.sqrt(POLICY_COV[0, 0]) * rng.standard_normal(dU)
                xs.append(x), us.append(u), ums.append(um)
                x = A @ x + B @ u + 0.02 * rng.standard_normal(dX)
            X.append(xs), U.append(us), Um.append(ums), labels.append(label)
    order = rng.permutation(len(labels))
    return np.array(X)[order], np.array(U)[order], np.array(Um)[order], np.array(labels)[order]


def _is_permutation_of(found: np.ndarray, truth: np.ndarray) -> bool:
    K = truth.max() + 1
    table = np.zeros((K, K), dtype=int)
    np.add.at(table, (truth, found), 1)
    return bool(np.all((table > 0).sum(axis=1) == 1) and np.all((table > 0).sum(axis=0) == 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_planted_clusters(seed):
    X, U, Um, labels = _planted(15, seed)
    result = cluster_trajectories(X, U, Um, POLICY_COV, ClusteringConfig(n_clusters=3, n_init=3), seed=seed)
    assert result.converged
    assert _is_permutation_of(result.assignment, labels)
    assert np.all(np.bincount(result.assignment, minlength=3) == 15)


def test_deterministic_given_seed():
    X, U, Um, _ = _planted(10, 5)
    a = cluster_trajectories(X, U, Um, POLICY_COV, ClusteringConfig(n_clusters=3), seed=7)
    b = cluster_trajectories(X, U, Um, POLICY_COV, ClusteringConfig(n_clusters=3), seed=7)
    np.testing.assert_array_equal(a.assignment, b.assignment)


def test_classification_likelihood_never_decreases():
    X, U, Um, _ = _planted(12, 3)
    # Without priors, ridge and floors every M-step is the exact maximiser, so hard EM ascends.
    # (min_cluster_size 7 keeps every per-step regression full rank.)
    cfg = ClusteringConfig(n_clusters=3, init="random", min_cluster_size=7, initial_state_strength=0.0,
                           covariance_floor=0.0, dynamics_regularization=0.0, policy_regularization=0.0)
    checked = 0
    for seed in range(6):
        result = cluster_trajectories(X, U, Um, POLICY_COV, cfg, seed=seed)
        if result.reseeded:
            continue
        checked += len(result.objective) - 1
        assert np.all(np.diff(result.objective) >= -1e-8 * np.abs(result.objective[:-1]))
    assert checked >= 5


def test_log_likelihood_matches_direct_density():
    """The vectorised score equals a per-step sum of scipy Gaussian log-densities."""
    from scipy.stats import multivariate_normal

    X, U, Um, _ = _planted(10, 4)
    result = cluster_trajectories(X, U, Um, POLICY_COV, ClusteringConfig(n_clusters=3), seed=0)
    c = result.clusters[1]
    m = 5
    direct = c.log_weight + multivariate_normal(c.x1.mu, c.x1.sigma).logpdf(X[m, 0])
    for t in range(T):
        direct += multivariate_normal(c.policy.K[t] @ X[m, t] + c.policy.k[t], c.policy.cov[t]).logpdf(Um[m, t])
        if t < T - 1:
            z = np.concatenate([X[m, t], U[m, t]])
            direct += multivariate_normal(c.dynamics.F[t] @ z + c.dynamics.f[t], c.dynamics.W[t]).logpdf(X[m, t + 1])
    scores = trajectory_log_likelihood(X, U, Um, result.clusters)
    assert scores[m, 1] == pytest.approx(direct, rel=1e-9)


def test_empty_cluster_is_reseeded():
    X, U, Um, _ = _planted(8, 6)
    start = np.zeros(len(X), dtype=int)  # clusters 1 and 2 start empty
    result = cluster_trajectories(X, U, Um, POLICY_COV, ClusteringConfig(n_clusters=3, min_cluster_size=3),
                                  initial_assignment=start)
    assert result.reseeded >= 6
    assert np.all(np.bincount(result.assignment, minlength=3) >= 3)
    assert np.all(np.isfinite(result.log_likelihood))


def test_more_clusters_than_structure_keeps_all_populated():
    X, U, Um, _ = _planted(6, 8)
    result = cluster_trajectories(X, U, Um, POLICY_COV, ClusteringConfig(n_clusters=6, min_cluster_size=2), seed=1)
    assert np.all(np.bincount(result.assignment, minlength=6) >= 2)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"U": np.zeros((24, T + 1, dU))}, "U"),
        ({"U_mean": np.zeros((24, T, dU + 1))}, "U_mean"),
        ({"policy_cov": -np.eye(dU)}, "policy_cov"),
        ({"initial_assignment": np.full(24, 5)}, "initial_assignment"),
        ({"config": ClusteringConfig(n_clusters=13)}, "X"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    X, U, Um, _ = _planted(8, 0)
    args = {"X": X, "U": U, "U_mean": Um, "policy_cov": POLICY_COV} | kwargs
    with pytest.raises(ValueError, match=f"^{field}:"):
        cluster_trajectories(**args)


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="^n_clusters:"):
        ClusteringConfig(n_clusters=0)
    with pytest.raises(ValueError, match="^covariance_floor:"):
        ClusteringConfig(covariance_floor=-1.0)
