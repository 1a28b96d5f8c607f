"""Trajectory-aware clustering (reset-free GPS, Montgomery et al. 2017, Sec. IV-A; ALGORITHM_NOTES).

A mixture of K Gaussian trajectory distributions. Cluster k holds an initial-state
Gaussian N(mu_k, S_k), a linearised global policy π̄_k(u|x) = N(K̄_t x + k̄_t, C̄_t) and
linear-Gaussian dynamics p_k(x'|x, u); a trajectory τ_m scores

    log P(k) + log N(x_1; mu_k, S_k) + Σ_t log π̄_k(ū_t | x_t) + Σ_{t<T} log p_k(x_{t+1} | x_t, u_t)

with ū_t the global policy's mean action at x_t, the quantity π̄_k is fitted to. Hard EM
(Alg. 2, lines 3-9): an initial assignment, then alternately fit every cluster to
its trajectories (M-step) and move every trajectory to its most likely cluster
(E-step) until no assignment changes. Because each M-step maximises the classification
likelihood Σ_m score(τ_m, z_m) for fixed assignments (exactly so without priors,
regularisation and floors) and each E-step maximises it for fixed clusters, that
likelihood never decreases between re-seeds. A cluster left with fewer than
min_cluster_size trajectories is re-seeded with the trajectories worst explained by
their own clusters.

The paper starts from a random assignment; on planted mixtures that often ends in a
local optimum that merges two distributions, so the default start is k-means (k-means++
seeding, scipy) on the standardised trajectories [x; u], and init="random" keeps the
paper's start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scipy.cluster.vq import kmeans2

from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.dynamics_fit import fit_dynamics, fit_linearized_policy
from gps_ros.core.gaussian import chol_log_det
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorGMM, PolicyPriorGMM
from gps_ros.core.validation import batched_cholesky, check_array, check_positive_definite


INITS = ("kmeans", "random")


@dataclass(frozen=True)
class ClusteringConfig:
    """n_clusters: K; init: "kmeans" or "random" (the first assignment); max_iterations: EM rounds (M-step + E-step) before giving up on
    convergence; n_init: random restarts, the one with the highest classification
    likelihood is kept; min_cluster_size: fewer trajectories than this re-seeds a cluster;
    initial_state_strength: pseudo-count pulling each S_k toward the pooled covariance
    of all initial states (0: maximum likelihood); covariance_floor: added to the
    diagonal of S_k and of W_k; dynamics_regularization / policy_regularization: ridge
    of the per-step regressions."""

    n_clusters: int = 4
    init: str = "kmeans"
    max_iterations: int = 50
    n_init: int = 1
    min_cluster_size: int = 2
    initial_state_strength: float = 1.0
    covariance_floor: float = 1e-6
    dynamics_regularization: float = 1e-6
    policy_regularization: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("n_clusters", "max_iterations", "n_init", "min_cluster_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value}")
        if self.init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {self.init!r}")
        for name in ("initial_state_strength", "covariance_floor", "dynamics_regularization", "policy_regularization"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite value >= 0, got {value}")


@dataclass(frozen=True)
class TrajectoryCluster:
    """One mixture element: x1 (N(mu_k, S_k)), dynamics [T, ...], policy (the linearised
    global policy, [T, ...]) and log_weight, log P(k)."""

    x1: InitialStateDistribution
    dynamics: LinearGaussianDynamics
    policy: LinearGaussianPolicy
    log_weight: float


@dataclass(frozen=True)
class ClusteringResult:
    """assignment: [M] cluster index of each trajectory; clusters: K fitted clusters
    (fitted to the final assignment); log_likelihood: [M, K] scores under them;
    objective: the classification likelihood after each M-step of the kept run;
    iterations: M-steps run; converged: whether the assignment stopped changing;
    reseeded: how many trajectories were moved into under-populated clusters."""

    assignment: np.ndarray
    clusters: list[TrajectoryCluster]
    log_likelihood: np.ndarray
    objective: list[float]
    iterations: int
    converged: bool
    reseeded: int


def cluster_trajectories(
    X: np.ndarray,
    U: np.ndarray,
    U_mean: np.ndarray,
    policy_cov: np.ndarray,
    config: ClusteringConfig = ClusteringConfig(),
    seed: int | None = None,
    dynamics_prior: DynamicsPriorGMM | None = None,
    policy_prior: PolicyPriorGMM | None = None,
    initial_assignment: np.ndarray | None = None,
) -> ClusteringResult:
    """Hard-EM clustering of M trajectories X [M, T, dX], U [M, T, dU].

    U_mean: [M, T, dU] the global policy's mean actions at X; policy_cov: [T, dU, dU] or
    [dU, dU] its covariance; dynamics_prior / policy_prior: fitted GMM priors (None:
    ridge regression); initial_assignment: [M] cluster indices to start from instead of
    the config's init drawn from seed (n_init is then 1). Deterministic given seed.
    """
    X = check_array("X", X, (None, None, None))
    M, T, dX = X.shape
    U = check_array("U", U, (M, T, None))
    dU = U.shape[2]
    U_mean = check_array("U_mean", U_mean, (M, T, dU))
    cov = check_array("policy_cov", policy_cov)
    if cov.shape not in ((dU, dU), (T, dU, dU)):
        raise ValueError(f"policy_cov: expected shape [{T}, {dU}, {dU}] or [{dU}, {dU}], got {list(cov.shape)}")
    check_positive_definite("policy_cov", cov)
    if T < 2 or dU < 1:
        raise ValueError(f"X, U: expected T >= 2 and dU >= 1, got X {list(X.shape)}, U {list(U.shape)}")
    K = config.n_clusters
    if M < K * config.min_cluster_size:
        raise ValueError(
            f"X: expected at least n_clusters x min_cluster_size = {K} x {config.min_cluster_size} trajectories, got M={M}"
        )
    starts: list[np.ndarray]
    if initial_assignment is not None:
        init = check_array("initial_assignment", initial_assignment, (M,), dtype=np.int64)
        if init.min() < 0 or init.max() >= K:
            raise ValueError(f"initial_assignment: expected indices in [0, {K}), got values in [{init.min()}, {init.max()}]")
        starts = [init]
    else:
        rng = np.random.default_rng(seed)
        starts = [_initial_assignment(X, U, K, config.init, rng) for _ in range(config.n_init)]
    fitter = _ClusterFitter(X, U, U_mean, cov, config, dynamics_prior, policy_prior)
    runs = [_hard_em(fitter, z, config) for z in starts]
    return max(runs, key=lambda r: r.objective[-1])


def trajectory_log_likelihood(
    X: np.ndarray, U: np.ndarray, U_mean: np.ndarray, clusters: list[TrajectoryCluster]
) -> np.ndarray:
    """Scores [M, K] of X [M, T, dX], U [M, T, dU] (U_mean [M, T, dU]: the global policy's
    mean actions) under each cluster: log P(k) + log p_k(τ_m), vectorised over k, m and t."""
    X = check_array("X", X, (None, None, None))
    M, T, dX = X.shape
    U = check_array("U", U, (M, T, None))
    U_mean = check_array("U_mean", U_mean, (M, T, U.shape[2]))
    if not clusters:
        raise ValueError("clusters: expected at least one cluster, got none")
    for k, c in enumerate(clusters):
        if c.policy.K.shape != (T, U.shape[2], dX) or c.dynamics.F.shape[:2] != (T, dX):
            raise ValueError(
                f"clusters[{k}]: expected T={T}, dX={dX}, dU={U.shape[2]}, got policy K {list(c.policy.K.shape)}, "
                f"dynamics F {list(c.dynamics.F.shape)}"
            )
    mu1 = np.stack([c.x1.mu for c in clusters])  # [K, dX]
    S1 = np.stack([c.x1.sigma for c in clusters])  # [K, dX, dX]
    Kbar = np.stack([c.policy.K for c in clusters])  # [K, T, dU, dX]
    kbar = np.stack([c.policy.k for c in clusters])  # [K, T, dU]
    chol_pi = np.stack([c.policy.chol_cov for c in clusters])  # [K, T, dU, dU]
    F = np.stack([c.dynamics.F[:-1] for c in clusters])  # [K, T-1, dX, dX+dU]
    f = np.stack([c.dynamics.f[:-1] for c in clusters])  # [K, T-1, dX]
    W = np.stack([c.dynamics.W[:-1] for c in clusters])  # [K, T-1, dX, dX]

    initial = _log_gaussian(X[None, :, 0] - mu1[:, None], _cholesky("clusters[].x1.sigma", S1)[:, None])
    u_pred = np.einsum("ktij,mtj->kmti", Kbar, X) + kbar[:, None]
    policy = _log_gaussian(U_mean[None] - u_pred, chol_pi[:, None]).sum(axis=2)
    Z = np.concatenate([X[:, :-1], U[:, :-1]], axis=2)
    x_pred = np.einsum("ktij,mtj->kmti", F, Z) + f[:, None]
    dynamics = _log_gaussian(X[None, :, 1:] - x_pred, _cholesky("clusters[].dynamics.W", W)[:, None]).sum(axis=2)
    log_weight = np.array([c.log_weight for c in clusters])
    return (log_weight[:, None] + initial + policy + dynamics).T


def _initial_assignment(X: np.ndarray, U: np.ndarray, K: int, init: str, rng: np.random.Generator) -> np.ndarray:
    M = len(X)
    if init == "random":
        # A balanced random split: every cluster starts populated.
        return rng.permutation(np.arange(M) % K)
    features = np.concatenate([X, U], axis=2).reshape(M, -1)
    std = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
    _, labels = kmeans2(features, K, minit="++", seed=rng)
    return labels.astype(np.int64)


def _log_gaussian(residual: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """log N(r; 0, L Lᵀ) for residual [..., d] and lower factors chol [..., d, d] (broadcast) -> [...]."""
    d = residual.shape[-1]
    eye = np.broadcast_to(np.eye(d), chol.shape)
    whitened = np.einsum("...ij,...j->...i", np.linalg.solve(chol, eye), residual)
    return -0.5 * ((whitened**2).sum(axis=-1) + chol_log_det(chol) + d * np.log(2.0 * np.pi))


def _cholesky(name: str, mats: np.ndarray) -> np.ndarray:
    chol, ok = batched_cholesky(mats)
    if not np.all(ok):
        idx = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise ValueError(
            f"{name}: expected positive-definite covariances, matrix {idx} is not; raise covariance_floor "
            "or give the fits a prior"
        )
    return chol


class _ClusterFitter:
    """The M-step: fits one cluster to a subset of the trajectories."""

    def __init__(self, X, U, U_mean, policy_cov, config, dynamics_prior, policy_prior) -> None:
        self.X, self.U, self.U_mean, self.policy_cov = X, U, U_mean, policy_cov
        self.config, self.dynamics_prior, self.policy_prior = config, dynamics_prior, policy_prior
        x0 = X[:, 0]
        diff = x0 - x0.mean(axis=0)
        self.pooled_x1_cov = diff.T @ diff / len(x0)

    def fit(self, members: np.ndarray, log_weight: float) -> TrajectoryCluster:
        cfg = self.config
        X, U, U_mean = self.X[members], self.U[members], self.U_mean[members]
        dX = X.shape[2]
        dynamics = fit_dynamics(X, U, self.dynamics_prior, cfg.dynamics_regularization)
        if cfg.covariance_floor > 0:
            dynamics = LinearGaussianDynamics(dynamics.F, dynamics.f, dynamics.W + cfg.covariance_floor * np.eye(dX))
        policy = fit_linearized_policy(X, U_mean, self.policy_cov, self.policy_prior, cfg.policy_regularization)
        x0 = X[:, 0]
        diff = x0 - x0.mean(axis=0)
        n, s = len(x0), cfg.initial_state_strength
        # NIW-style MAP: a few trajectories in many dimensions give a singular S_k alone.
        sigma = (diff.T @ diff + s * self.pooled_x1_cov) / (n + s) + cfg.covariance_floor * np.eye(dX)
        return TrajectoryCluster(InitialStateDistribution(x0.mean(axis=0), sigma), dynamics, policy, log_weight)

    def fit_all(self, assignment: np.ndarray, K: int) -> list[TrajectoryCluster]:
        counts = np.bincount(assignment, minlength=K)
        return [self.fit(np.flatnonzero(assignment == k), float(np.log(counts[k] / len(assignment)))) for k in range(K)]

    def scores(self, clusters: list[TrajectoryCluster]) -> np.ndarray:
        return trajectory_log_likelihood(self.X, self.U, self.U_mean, clusters)


def _hard_em(fitter: _ClusterFitter, assignment: np.ndarray, config: ClusteringConfig) -> ClusteringResult:
    K, M = config.n_clusters, len(assignment)
    z = assignment.copy()
    reseeded = 0
    objective: list[float] = []
    scores = None
    z, moved = _reseed(z, scores, K, config.min_cluster_size)
    reseeded += moved
    converged = False
    iterations = 0
    while iterations < config.max_iterations:
        clusters = fitter.fit_all(z, K)
        iterations += 1
        scores = fitter.scores(clusters)
        objective.append(float(scores[np.arange(M), z].sum()))
        z_new, moved = _reseed(np.argmax(scores, axis=1), scores, K, config.min_cluster_size)
        reseeded += moved
        if np.array_equal(z_new, z):
            converged = True
            break
        z = z_new
    if not converged:
        clusters = fitter.fit_all(z, K)
        scores = fitter.scores(clusters)
    return ClusteringResult(z, clusters, scores, objective, iterations, converged, reseeded)


def _reseed(z: np.ndarray, scores: np.ndarray | None, K: int, min_size: int) -> tuple[np.ndarray, int]:
    """Fill clusters with fewer than min_size members from the trajectories worst explained
    by their own (larger) clusters; without scores, from the largest clusters in index order."""
    z = z.copy()
    moved = 0
    M = len(z)
    own = np.zeros(M) if scores is None else scores[np.arange(M), z]
    for k in range(K):
        while (z == k).sum() < min_size:
            counts = np.bincount(z, minlength=K)
            donors = np.flatnonzero((counts[z] > min_size) & (z != k))
            m = donors[np.argmin(own[donors])]
            z[m] = k
            own[m] = np.inf  # a re-seeded trajectory is not moved again in this pass
            moved += 1
    return z, moved
