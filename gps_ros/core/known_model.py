"""A known (simulator or analytic) dynamics model with derivatives: what variational and
constrained GPS optimise trajectories against, instead of dynamics fitted to samples."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class DynamicsModel(Protocol):
    """Deterministic discrete-time dynamics x_{t+1} = f(x_t, u_t) with Jacobians.

    dX: state size; dU: action size.
    """

    dX: int
    dU: int

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """x: [dX], u: [dU] -> x_next: [dX]."""
        ...

    def linearize(self, X: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linearise along a trajectory X: [T, dX], U: [T, dU].

        Returns fx: [T, dX, dX], fu: [T, dX, dU] and the successor states f(X_t, U_t):
        [T, dX], so that x_{t+1} ≈ f(X_t, U_t) + fx_t (x - X_t) + fu_t (u - U_t).
        """
        ...
