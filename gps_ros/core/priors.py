"""Gaussian-mixture normal-inverse-Wishart priors for per-time-step linear regression.

Levine & Abbeel (2014), MDGPS App. B: a GMM fitted to tuples pooled over all time steps
of a bounded buffer of recent samples; at time t the mixture, weighted by the averaged
responsibilities of the current tuples at t, is moment-matched into one Gaussian
N(mu0, Phi) with pseudo-counts m = n0 = strength.

One class, ``GMMPrior``, holds the buffer, the refit and the evaluation; the dynamics
prior (tuples [x_t; u_t; x_{t+1}]) and the policy prior (tuples [x_t; u_t] with u the
global policy's mean action) differ only in how tuples are built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gps_ros.core.gmm import GaussianMixture, GMMConfig, fit_gmm, n_clusters_for
from gps_ros.core.validation import check_array


@dataclass(frozen=True)
class GMMPriorConfig:
    """max_clusters / min_samples_per_cluster: K = max(2, min(max_clusters,
    floor(#tuples / min_samples_per_cluster))); max_samples: how many past samples
    (trajectories) the buffer keeps, oldest dropped; strength: multiplies the
    pseudo-counts m and n0; gmm: EM settings."""

    max_clusters: int = 20
    min_samples_per_cluster: int = 40
    max_samples: int = 20
    strength: float = 1.0
    gmm: GMMConfig = field(default_factory=GMMConfig)

    def __post_init__(self) -> None:
        for name in ("max_clusters", "min_samples_per_cluster", "max_samples"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value}")
        if not np.isfinite(self.strength) or self.strength <= 0:
            raise ValueError(f"strength: expected a finite value > 0, got {self.strength}")


DynamicsPriorConfig = GMMPriorConfig
PolicyPriorConfig = GMMPriorConfig


class GMMPrior:
    """A GMM prior over tuples built from sample batches X [N, T, dX], U [N, T, dU].

    ``tuples_from(X, U) -> [N, T', D]`` (T' tuples per sample) is what differs between
    the dynamics and the policy prior.
    """

    def __init__(self, config: GMMPriorConfig = GMMPriorConfig()) -> None:
        self.config = config
        self.X: np.ndarray | None = None  # [n_buffer, T, dX]
        self.U: np.ndarray | None = None  # [n_buffer, T, dU]
        self.gmm: GaussianMixture | None = None

    @staticmethod
    def tuples_from(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def n_buffered(self) -> int:
        return 0 if self.X is None else self.X.shape[0]

    @property
    def dim(self) -> int:
        """D, the tuple dimension (0 before the first update)."""
        return 0 if self.gmm is None else self.gmm.dim

    def update(self, X: np.ndarray, U: np.ndarray) -> None:
        """Append X [N, T, dX], U [N, T, dU] to the buffer (keeping the last max_samples) and refit."""
        X = check_array("X", X, (None, None, None))
        N, T, dX = X.shape
        U = check_array("U", U, (N, T, None))
        if N < 1 or U.shape[2] < 1:
            raise ValueError(f"X, U: expected N >= 1 samples and dU >= 1, got X {list(X.shape)}, U {list(U.shape)}")
        if self.X is not None and (self.X.shape[1:] != X.shape[1:] or self.U.shape[2] != U.shape[2]):
            raise ValueError(
                f"X, U: expected [*, {self.X.shape[1]}, {self.X.shape[2]}] and [*, {self.U.shape[1]}, {self.U.shape[2]}]"
                f" like the buffered samples, got {list(X.shape)} and {list(U.shape)}"
            )
        keep = self.config.max_samples
        X_buf = X[-keep:] if self.X is None else np.concatenate([self.X, X])[-keep:]
        U_buf = U[-keep:] if self.U is None else np.concatenate([self.U, U])[-keep:]
        tuples = self.tuples_from(X_buf, U_buf)
        points = tuples.reshape(-1, tuples.shape[-1])
        if len(points) < 2:
            raise ValueError(f"X: expected at least 2 tuples in the buffer, got {len(points)} from shape {list(X_buf.shape)}")
        K = n_clusters_for(len(points), self.config.max_clusters, self.config.min_samples_per_cluster)
        gmm = fit_gmm(points, K, self.gmm, self.config.gmm)
        self.X, self.U, self.gmm = X_buf, U_buf, gmm

    def eval(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Prior at one time step from the current tuples points [n, D].

        Returns mu0 [D], Phi [D, D], m, n0.
        """
        pts = check_array("points", points, (None, self.dim))
        mu0, Phi, m, n0 = self.eval_batch(pts[None])
        return mu0[0], Phi[0], m, n0

    def eval_batch(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Priors for B time steps at once from points [B, n, D].

        Returns mu0 [B, D], Phi [B, D, D] (moment-matched mixture covariance), m, n0.
        """
        if self.gmm is None:
            raise ValueError("prior: not fitted yet; call update(X, U) with samples first")
        pts = check_array("points", points, (None, None, self.dim))
        B, n, D = pts.shape
        if n < 1:
            raise ValueError(f"points: expected at least one point per time step, got shape {list(pts.shape)}")
        gmm = self.gmm
        weights = gmm.responsibilities(pts.reshape(B * n, D)).reshape(B, n, -1).mean(axis=1)  # [B, K]
        mu0 = weights @ gmm.means
        # Phi = sum_k w_k (Sigma_k + (mu_k - c)(mu_k - c)^T) - (mu0 - c)(mu0 - c)^T for any c:
        # one product for all steps; c = the mixture mean keeps the subtraction well conditioned.
        centre = gmm.weights @ gmm.means
        offsets = gmm.means - centre
        moments = gmm.covariances + offsets[:, :, None] * offsets[:, None, :]
        shift = mu0 - centre
        Phi = (weights @ moments.reshape(len(offsets), D * D)).reshape(B, D, D)
        Phi -= shift[:, :, None] * shift[:, None, :]
        strength = float(self.config.strength)
        return mu0, Phi, strength, strength


class DynamicsPriorGMM(GMMPrior):
    """Prior over [x_t; u_t; x_{t+1}] (D = 2 dX + dU), t = 0 .. T-2."""

    @staticmethod
    def tuples_from(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        """[x_t; u_t; x_{t+1}] tuples [N, T-1, 2dX+dU] from X [N, T, dX], U [N, T, dU]."""
        return np.concatenate([X[:, :-1], U[:, :-1], X[:, 1:]], axis=2)


class PolicyPriorGMM(GMMPrior):
    """Prior over [x_t; u_t] (D = dX + dU), u_t the global policy's mean action, t = 0 .. T-1."""

    @staticmethod
    def tuples_from(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        """[x_t; u_t] tuples [N, T, dX+dU] from X [N, T, dX], U [N, T, dU]."""
        return np.concatenate([X, U], axis=2)
