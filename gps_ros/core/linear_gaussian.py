"""Time-varying linear-Gaussian policies u_t ~ N(K_t x_t + k_t, C_t)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gps_ros.core.validation import check_array, check_positive_definite


@dataclass(frozen=True)
class LinearGaussianPolicy:
    """K: [T, dU, dX] feedback gains; k: [T, dU] feed-forward terms; cov: [T, dU, dU] C_t.

    chol_cov [T, dU, dU] (lower Cholesky factor of C_t) and inv_cov [T, dU, dU] are
    derived on construction; cov must be symmetric positive definite.
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
        eye = np.broadcast_to(np.eye(dU), cov.shape)
        chol_inv = np.linalg.solve(chol, eye)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "chol_cov", chol)
        object.__setattr__(self, "inv_cov", np.swapaxes(chol_inv, -1, -2) @ chol_inv)

    @property
    def T(self) -> int:
        return self.K.shape[0]

    @property
    def dU(self) -> int:
        return self.K.shape[1]

    @property
    def dX(self) -> int:
        return self.K.shape[2]
