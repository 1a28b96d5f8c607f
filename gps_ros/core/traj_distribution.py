"""State-action marginals of a linear-Gaussian policy under linear-Gaussian dynamics, and expected costs.

Notation: z_t = [x_t; u_t] of size dX + dU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.validation import check_array


@dataclass(frozen=True)
class TrajectoryDistribution:
    """Gaussian marginals z_t ~ N(mu[t], sigma[t]): mu [T, dX + dU], sigma [T, dX + dU, dX + dU]."""

    mu: np.ndarray
    sigma: np.ndarray
    dX: int

    @property
    def T(self) -> int:
        return self.mu.shape[0]

    @property
    def mu_x(self) -> np.ndarray:
        """[T, dX]"""
        return self.mu[:, : self.dX]

    @property
    def sigma_x(self) -> np.ndarray:
        """[T, dX, dX]"""
        return self.sigma[:, : self.dX, : self.dX]


@dataclass(frozen=True)
class QuadraticCost:
    """ℓ_t(z) = ½ zᵀ Lzz[t] z + zᵀ lz[t] + c[t] in absolute coordinates.

    c: [T]; lz: [T, dX + dU]; Lzz: [T, dX + dU, dX + dU] (symmetric).
    """

    c: np.ndarray
    lz: np.ndarray
    Lzz: np.ndarray

    def __post_init__(self) -> None:
        c = check_array("c", self.c, (None,))
        lz = check_array("lz", self.lz, (c.shape[0], None))
        Lzz = check_array("Lzz", self.Lzz, (c.shape[0], lz.shape[1], lz.shape[1]))
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "lz", lz)
        object.__setattr__(self, "Lzz", Lzz)

    @property
    def T(self) -> int:
        return self.c.shape[0]

    @staticmethod
    def from_expansion(expansion: CostExpansion, X: np.ndarray, U: np.ndarray) -> QuadraticCost:
        """Average of the N per-sample Taylor expansions (each taken at z = [X; U] of its sample).

        expansion: CostExpansion with [N, T, ...] fields; X: [N, T, dX]; U: [N, T, dU].
        Each expansion is re-centred at z = 0 before averaging, so that the result is
        one quadratic valid in absolute coordinates.
        """
        l = check_array("expansion.l", expansion.l, (None, None))
        N, T = l.shape
        X = check_array("X", X, (N, T, None))
        U = check_array("U", U, (N, T, None))
        dX, dU = X.shape[2], U.shape[2]
        lx = check_array("expansion.lx", expansion.lx, (N, T, dX))
        lu = check_array("expansion.lu", expansion.lu, (N, T, dU))
        lxx = check_array("expansion.lxx", expansion.lxx, (N, T, dX, dX))
        luu = check_array("expansion.luu", expansion.luu, (N, T, dU, dU))
        lux = check_array("expansion.lux", expansion.lux, (N, T, dU, dX))
        g = np.concatenate([lx, lu], axis=2)
        H = np.block([[lxx, np.swapaxes(lux, -1, -2)], [lux, luu]])
        z = np.concatenate([X, U], axis=2)
        Hz = np.einsum("ntij,ntj->nti", H, z)
        c = l - np.einsum("nti,nti->nt", g, z) + 0.5 * np.einsum("nti,nti->nt", z, Hz)
        H = H.mean(axis=0)
        return QuadraticCost(c.mean(axis=0), (g - Hz).mean(axis=0), 0.5 * (H + np.swapaxes(H, -1, -2)))


def forward(
    policy: LinearGaussianPolicy, dynamics: LinearGaussianDynamics, x1: InitialStateDistribution
) -> TrajectoryDistribution:
    """Marginals of z_t under x_1 ~ x1, u_t ~ policy, x_{t+1} ~ dynamics (ALGORITHM_NOTES forward pass)."""
    T, dU, dX = policy.K.shape
    if (dynamics.T, dynamics.dX, dynamics.dU) != (T, dX, dU):
        raise ValueError(
            f"dynamics: expected T={T}, dX={dX}, dU={dU} to match the policy, "
            f"got T={dynamics.T}, dX={dynamics.dX}, dU={dynamics.dU}"
        )
    if x1.mu.shape != (dX,):
        raise ValueError(f"x1.mu: expected shape [{dX}], got {list(x1.mu.shape)}")
    return forward_arrays(policy.K, policy.k, policy.cov, dynamics.F, dynamics.f, dynamics.W, x1.mu, x1.sigma)


def forward_arrays(K, k, cov, F, f, W, mu1, sigma1) -> TrajectoryDistribution:
    """forward() on raw arrays: K [T, dU, dX], k [T, dU], cov [T, dU, dU], F [T, dX, dX+dU], f [T, dX], W [T, dX, dX]."""
    T, dU, dX = K.shape
    Fu = F[:, :, dX:]
    # Closed loop x_{t+1} = Fc_t x_t + b_t + noise with covariance Fu C Fuᵀ + W; all but the recursion is batched.
    Fc = F[:, :, :dX] + Fu @ K
    b = np.einsum("tij,tj->ti", Fu, k) + f
    noise = Fu @ cov @ np.swapaxes(Fu, 1, 2) + W
    mu_x = np.empty((T, dX))
    S = np.empty((T, dX, dX))
    mu_x[0], S[0] = mu1, sigma1
    for t in range(T - 1):
        mu_x[t + 1] = Fc[t] @ mu_x[t] + b[t]
        S[t + 1] = Fc[t] @ S[t] @ Fc[t].T + noise[t]
    S = 0.5 * (S + np.swapaxes(S, 1, 2))
    SKt = S @ np.swapaxes(K, 1, 2)
    mu = np.concatenate([mu_x, np.einsum("tij,tj->ti", K, mu_x) + k], axis=1)
    sigma = np.empty((T, dX + dU, dX + dU))
    sigma[:, :dX, :dX] = S
    sigma[:, :dX, dX:] = SKt
    sigma[:, dX:, :dX] = np.swapaxes(SKt, 1, 2)
    sigma[:, dX:, dX:] = K @ SKt + cov
    return TrajectoryDistribution(mu, sigma, dX)


def expected_cost(traj: TrajectoryDistribution, cost: QuadraticCost) -> np.ndarray:
    """Per-step expected cost [T]: ½ μᵀLμ + μᵀl + c + ½ tr(LΣ)."""
    if cost.lz.shape != traj.mu.shape:
        raise ValueError(f"cost.lz: expected shape {list(traj.mu.shape)} to match the trajectory, got {list(cost.lz.shape)}")
    Lmu = np.einsum("tij,tj->ti", cost.Lzz, traj.mu)
    return (
        0.5 * np.einsum("ti,ti->t", traj.mu, Lmu)
        + np.einsum("ti,ti->t", traj.mu, cost.lz)
        + cost.c
        + 0.5 * np.einsum("tij,tji->t", cost.Lzz, traj.sigma)
    )
