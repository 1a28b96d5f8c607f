"""The quadratic expansion every cost returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CostExpansion:
    """Cost and its derivatives along N trajectories of length T.

    l: [N, T]; lx: [N, T, dX]; lu: [N, T, dU]; lxx: [N, T, dX, dX];
    luu: [N, T, dU, dU]; lux: [N, T, dU, dX]. Sums and scalings are elementwise.
    """

    l: np.ndarray
    lx: np.ndarray
    lu: np.ndarray
    lxx: np.ndarray
    luu: np.ndarray
    lux: np.ndarray

    def __add__(self, other: CostExpansion) -> CostExpansion:
        return CostExpansion(*(a + b for a, b in zip(self._fields(), other._fields())))

    def scaled(self, weight: float) -> CostExpansion:
        return CostExpansion(*(weight * a for a in self._fields()))

    def _fields(self) -> tuple[np.ndarray, ...]:
        return (self.l, self.lx, self.lu, self.lxx, self.luu, self.lux)
