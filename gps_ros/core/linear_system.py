"""A known discrete-time linear-Gaussian system with a quadratic cost: ground truth for tests and benchmarks.

x_{t+1} = A x_t + B u_t + c + w_t, w_t ~ N(0, W); ℓ_t = ½ (x − x*)ᵀQ(x − x*) + ½ uᵀRu.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.samples import SampleBatch
from gps_ros.core.traj_distribution import QuadraticCost
from gps_ros.core.validation import check_array, check_positive_definite


@dataclass(frozen=True)
class LinearSystem:
    """A: [dX, dX]; B: [dX, dU]; c: [dX]; W: [dX, dX] process-noise covariance (PD); T: horizon."""

    A: np.ndarray
    B: np.ndarray
    c: np.ndarray
    W: np.ndarray
    T: int

    def __post_init__(self) -> None:
        A = check_array("A", self.A, (None, None))
        dX = A.shape[0]
        check_array("A", A, (dX, dX))
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", check_array("B", self.B, (dX, None)))
        object.__setattr__(self, "c", check_array("c", self.c, (dX,)))
        object.__setattr__(self, "W", check_array("W", self.W, (dX, dX)))
        check_positive_definite("W", self.W)
        if int(self.T) < 1:
            raise ValueError(f"T: expected a positive integer, got {self.T}")

    @property
    def dX(self) -> int:
        return self.A.shape[0]

    @property
    def dU(self) -> int:
        return self.B.shape[1]

    def dynamics(self) -> LinearGaussianDynamics:
        """The exact dynamics as time-varying arrays [T, ...]."""
        F = np.concatenate([self.A, self.B], axis=1)
        return LinearGaussianDynamics(
            np.tile(F, (self.T, 1, 1)), np.tile(self.c, (self.T, 1)), np.tile(self.W, (self.T, 1, 1))
        )

    def rollout(
        self, policy: LinearGaussianPolicy, x0: np.ndarray, noise: np.ndarray, rng: np.random.Generator
    ) -> SampleBatch:
        """N trajectories from initial states x0 [N, dX] with action noise [N, T, dU] (standard normal)."""
        if (policy.T, policy.dX, policy.dU) != (self.T, self.dX, self.dU):
            raise ValueError(
                f"policy: expected T={self.T}, dX={self.dX}, dU={self.dU}, got T={policy.T}, dX={policy.dX}, dU={policy.dU}"
            )
        x0 = check_array("x0", x0, (None, self.dX))
        N = x0.shape[0]
        noise = check_array("noise", noise, (N, self.T, self.dU))
        X = np.empty((N, self.T, self.dX))
        U = np.empty((N, self.T, self.dU))
        w = rng.standard_normal((N, self.T, self.dX)) @ np.linalg.cholesky(self.W).T
        x = x0
        for t in range(self.T):
            X[:, t] = x
            U[:, t] = policy.act_batch(x, t, noise[:, t])
            x = X[:, t] @ self.A.T + U[:, t] @ self.B.T + self.c + w[:, t]
        return SampleBatch(X, U, noise=noise)


@dataclass(frozen=True)
class QuadraticStateCost:
    """ℓ_t = ½ (x − target)ᵀ Q (x − target) + ½ uᵀ R u at every step; Q [dX, dX] PSD, R [dU, dU] PD."""

    Q: np.ndarray
    R: np.ndarray
    target: np.ndarray

    def __post_init__(self) -> None:
        Q = check_array("Q", self.Q, (None, None))
        object.__setattr__(self, "Q", check_array("Q", Q, (Q.shape[0], Q.shape[0])))
        object.__setattr__(self, "R", check_array("R", self.R, (None, None)))
        check_positive_definite("R", self.R)
        object.__setattr__(self, "target", check_array("target", self.target, (Q.shape[0],)))

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Exact expansion at each sample point: fields [N, T, ...]."""
        N, T = samples.N, samples.T
        dx = samples.X - self.target
        Qdx = dx @ self.Q
        RU = samples.U @ self.R
        l = 0.5 * (np.einsum("nti,nti->nt", dx, Qdx) + np.einsum("nti,nti->nt", samples.U, RU))
        dX, dU = self.Q.shape[0], self.R.shape[0]
        return CostExpansion(
            l, Qdx, RU,
            np.broadcast_to(self.Q, (N, T, dX, dX)), np.broadcast_to(self.R, (N, T, dU, dU)), np.zeros((N, T, dU, dX)),
        )

    def quadratic(self, T: int) -> QuadraticCost:
        """The same cost as a QuadraticCost in absolute coordinates."""
        dX, dU = self.Q.shape[0], self.R.shape[0]
        Lzz = np.zeros((dX + dU, dX + dU))
        Lzz[:dX, :dX], Lzz[dX:, dX:] = self.Q, self.R
        lz = np.concatenate([-self.Q @ self.target, np.zeros(dU)])
        c = 0.5 * self.target @ self.Q @ self.target
        return QuadraticCost(np.full(T, c), np.tile(lz, (T, 1)), np.tile(Lzz, (T, 1, 1)))


def point_mass(T: int = 50, dt: float = 0.05, process_noise: float = 1e-4) -> LinearSystem:
    """2-D double integrator: x = [p_x, p_y, v_x, v_y], u = force on a unit mass (semi-implicit Euler)."""
    A = np.eye(4)
    A[0, 2] = A[1, 3] = dt
    B = np.zeros((4, 2))
    B[2, 0] = B[3, 1] = dt
    B[0, 0] = B[1, 1] = dt * dt
    return LinearSystem(A, B, np.zeros(4), process_noise * np.eye(4), T)


def random_stable_system(rng: np.random.Generator, T: int, dX: int, dU: int, radius: float = 0.95) -> LinearSystem:
    """A random A with spectral radius `radius`, random B, c and a small process noise."""
    A = rng.standard_normal((dX, dX))
    A *= radius / np.max(np.abs(np.linalg.eigvals(A)))
    B = rng.standard_normal((dX, dU)) / np.sqrt(dX)
    return LinearSystem(A, B, 0.01 * rng.standard_normal(dX), 1e-4 * np.eye(dX), T)


def lqr_optimum(
    system: LinearSystem, cost: QuadraticStateCost, x1: InitialStateDistribution
) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact finite-horizon optimum: gains K [T, dU, dX], k [T, dU] of u = K x + k and its expected total cost.

    Riccati recursion on V_t(x) = ½ xᵀP x + pᵀx + s; the process noise adds ½ tr(P W)
    to s (certainty equivalence: the gains do not depend on W).
    """
    A, B, c, W, T = system.A, system.B, system.c, system.W, system.T
    Q, R, xs = cost.Q, cost.R, cost.target
    dX, dU = system.dX, system.dU
    P, p, s = np.zeros((dX, dX)), np.zeros(dX), 0.0
    K, k = np.empty((T, dU, dX)), np.empty((T, dU))
    for t in range(T - 1, -1, -1):
        pc = p + P @ c
        H = R + B.T @ P @ B
        K[t] = -np.linalg.solve(H, B.T @ P @ A)
        k[t] = -np.linalg.solve(H, B.T @ pc)
        s = s + 0.5 * c @ P @ c + p @ c + 0.5 * np.trace(P @ W) + 0.5 * xs @ Q @ xs + 0.5 * k[t] @ H @ k[t] + k[t] @ B.T @ pc
        p_new = A.T @ pc - Q @ xs + (A.T @ P @ B) @ k[t]
        P = Q + A.T @ P @ A + (A.T @ P @ B) @ K[t]
        P = 0.5 * (P + P.T)
        p = p_new
    expected = 0.5 * x1.mu @ P @ x1.mu + 0.5 * np.trace(P @ x1.sigma) + p @ x1.mu + s
    return K, k, float(expected)
