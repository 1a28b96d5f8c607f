"""Time-varying linear-Gaussian policies u_t ~ N(K_t x_t + k_t, C_t)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gps_ros.core.gaussian import chol_inverse
from gps_ros.core.validation import check_array, check_positive_definite


@dataclass(frozen=True)
class LinearGaussianPolicy:
    """K: [T, dU, dX] feedback gains; k: [T, dU] feed-forward terms; cov: [T, dU, dU] C_t.

    chol_cov [T, dU, dU] (lower Cholesky factor of C_t) and inv_cov [T, dU, dU] are
    derived on construction; cov must be symmetric positive definite.

    Exploration noise is standard normal; with the lower factor L_t (C_t = L_t L_tᵀ),
    u_t = K_t x_t + k_t + L_t noise_t has covariance C_t.
    """

    K: np.ndarray
    k: np.ndarray
    cov: np.ndarray
    chol_cov: np.ndarray = field(init=False, repr=False)
    inv_cov: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K = check_array("K", self.K, (None, None, None))
        T, dU, dX = K.shape
        k = check_array("k", self.k, (T, dU))
        cov = check_array("cov", self.cov, (T, dU, dU))
        chol = check_positive_definite("cov", cov)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "chol_cov", chol)
        object.__setattr__(self, "inv_cov", chol_inverse(chol))

    @property
    def T(self) -> int:
        return self.K.shape[0]

    @property
    def dU(self) -> int:
        return self.K.shape[1]

    @property
    def dX(self) -> int:
        return self.K.shape[2]

    def act(self, x: np.ndarray, t: int, noise: np.ndarray | None = None) -> np.ndarray:
        """Action u [dU] at state x [dX] and step t; noise [dU] standard normal (None: the mean)."""
        if not 0 <= int(t) < self.T:
            raise ValueError(f"t: expected an integer in [0, {self.T}), got {t}")
        x = check_array("x", x, (self.dX,))
        if noise is not None:
            noise = check_array("noise", noise, (self.dU,))
        return self.act_unchecked(x, int(t), noise)

    def act_unchecked(self, x: np.ndarray, t: int, noise: np.ndarray | None = None) -> np.ndarray:
        """``act`` without input checks, for the sampling loop of an agent that built x
        itself and checked the policy's dimensions and the noise once per trial."""
        u = self.K[t] @ x + self.k[t]
        if noise is not None:
            u += self.chol_cov[t] @ noise
        return u

    def act_batch(self, X: np.ndarray, t: int, noise: np.ndarray | None = None) -> np.ndarray:
        """Actions U [N, dU] at states X [N, dX] and step t; noise [N, dU] standard normal (None: the means)."""
        if not 0 <= int(t) < self.T:
            raise ValueError(f"t: expected an integer in [0, {self.T}), got {t}")
        X = check_array("X", X, (None, self.dX))
        U = X @ self.K[t].T + self.k[t]
        if noise is not None:
            U = U + check_array("noise", noise, (X.shape[0], self.dU)) @ self.chol_cov[t].T
        return U

    def fold_noise(self, noise: np.ndarray) -> LinearGaussianPolicy:
        """The policy with noise [T, dU] folded into the feed-forward term: k_t + L_t noise_t.

        Its mean actions are the noisy actions of this policy, so a controller can run it
        deterministically. The covariance is kept as it is (a zero covariance is not
        positive definite); a caller running the folded policy must use its mean only.
        """
        noise = check_array("noise", noise, (self.T, self.dU))
        return LinearGaussianPolicy(self.K, self.k + np.einsum("tij,tj->ti", self.chol_cov, noise), self.cov)


def init_pd(
    T: int,
    dX: int,
    dU: int,
    position_slice: slice,
    velocity_slice: slice,
    target: np.ndarray,
    kp: float | np.ndarray,
    kd: float | np.ndarray,
    noise_variance: float,
) -> LinearGaussianPolicy:
    """A PD controller u = kp (target − q) − kd q̇ with covariance noise_variance · I, held for T steps.

    q = x[position_slice], q̇ = x[velocity_slice], each of size dU; target: [dU];
    kp, kd: scalars or [dU] per-joint gains.
    """
    if int(T) < 1 or int(dX) < 1 or int(dU) < 1:
        raise ValueError(f"T, dX, dU: expected positive integers, got T={T}, dX={dX}, dU={dU}")
    for name, sl in (("position_slice", position_slice), ("velocity_slice", velocity_slice)):
        if not isinstance(sl, slice) or len(range(dX)[sl]) != dU:
            raise ValueError(f"{name}: expected a slice of {dU} entries within [0, {dX}), got {sl}")
    target = check_array("target", target, (dU,))
    kp = np.broadcast_to(check_array("kp", kp), (dU,)) if np.ndim(kp) == 0 else check_array("kp", kp, (dU,))
    kd = np.broadcast_to(check_array("kd", kd), (dU,)) if np.ndim(kd) == 0 else check_array("kd", kd, (dU,))
    if not float(noise_variance) > 0:
        raise ValueError(f"noise_variance: expected a positive number, got {noise_variance}")
    K = np.zeros((dU, dX))
    K[:, position_slice] = -np.diag(kp)
    K[:, velocity_slice] = -np.diag(kd)
    return LinearGaussianPolicy(
        np.broadcast_to(K, (T, dU, dX)).copy(),
        np.broadcast_to(kp * target, (T, dU)).copy(),
        np.broadcast_to(float(noise_variance) * np.eye(dU), (T, dU, dU)).copy(),
    )
