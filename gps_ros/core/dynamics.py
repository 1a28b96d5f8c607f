"""Time-varying linear-Gaussian dynamics x_{t+1} ~ N(F_t [x_t; u_t] + f_t, W_t)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_ros.core.validation import check_array


@dataclass(frozen=True)
class LinearGaussianDynamics:
    """F: [T, dX, dX + dU]; f: [T, dX]; W: [T, dX, dX] (noise covariance, PSD).

    Entry t maps (x_t, u_t) to x_{t+1}; the last entry is unused by a forward pass of
    length T but kept so that all arrays share the time axis.
    """

    F: np.ndarray
    f: np.ndarray
    W: np.ndarray

    def __post_init__(self) -> None:
        F = check_array("F", self.F, (None, None, None))
        T, dX, dXU = F.shape
        if dXU <= dX:
            raise ValueError(f"F: expected shape [T, dX, dX + dU] with dU >= 1, got {list(F.shape)}")
        object.__setattr__(self, "F", F)
        object.__setattr__(self, "f", check_array("f", self.f, (T, dX)))
        object.__setattr__(self, "W", check_array("W", self.W, (T, dX, dX)))

    @property
    def T(self) -> int:
        return self.F.shape[0]

    @property
    def dX(self) -> int:
        return self.F.shape[1]

    @property
    def dU(self) -> int:
        return self.F.shape[2] - self.F.shape[1]


@dataclass(frozen=True)
class InitialStateDistribution:
    """x_1 ~ N(mu, sigma): mu [dX], sigma [dX, dX]."""

    mu: np.ndarray
    sigma: np.ndarray

    def __post_init__(self) -> None:
        mu = check_array("mu", self.mu, (None,))
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", check_array("sigma", self.sigma, (mu.shape[0], mu.shape[0])))
