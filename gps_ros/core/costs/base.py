"""The quadratic expansion every cost returns, and the interface every cost implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from gps_ros.core.samples import SampleBatch
from gps_ros.core.validation import check_array


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

    @staticmethod
    def zeros(N: int, T: int, dX: int, dU: int) -> CostExpansion:
        """An all-zero expansion of the given sizes."""
        return CostExpansion(
            np.zeros((N, T)), np.zeros((N, T, dX)), np.zeros((N, T, dU)),
            np.zeros((N, T, dX, dX)), np.zeros((N, T, dU, dU)), np.zeros((N, T, dU, dX)),
        )

    def __add__(self, other: CostExpansion) -> CostExpansion:
        return CostExpansion(*(a + b for a, b in zip(self._fields(), other._fields())))

    def scaled(self, weight: float) -> CostExpansion:
        return CostExpansion(*(weight * a for a in self._fields()))

    def _fields(self) -> tuple[np.ndarray, ...]:
        return (self.l, self.lx, self.lu, self.lxx, self.luu, self.lux)


@runtime_checkable
class Cost(Protocol):
    """A trajectory cost: value and derivatives at every step of every sample. A cost whose
    derivatives are dear may also offer ``value(samples) -> l [N, T]`` (see value_around)."""

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Expansion ``[N, T, ...]`` at the samples' states and actions."""
        ...


def expand_around(
    cost: Cost,
    x_mean: np.ndarray,
    u_mean: np.ndarray,
    extras: Mapping[str, np.ndarray] | None = None,
    state_slices: Mapping[str, slice] | None = None,
) -> CostExpansion:
    """Expand ``cost`` around one trajectory, e.g. a trajectory distribution's mean.

    x_mean: [T, dX]; u_mean: [T, dU]; extras: per-step arrays ``[T, ...]`` (e.g.
    ``"ee_point_jacobians": [T, dP, dX]``); state_slices: the state layout the cost's
    named slices refer to. Returns an expansion with N = 1.
    """
    return cost.expand(_one_trajectory(x_mean, u_mean, extras, state_slices))


def value_around(
    cost: Cost,
    x_mean: np.ndarray,
    u_mean: np.ndarray,
    extras: Mapping[str, np.ndarray] | None = None,
    state_slices: Mapping[str, slice] | None = None,
) -> np.ndarray:
    """l [1, T] of ``cost`` along one trajectory (arguments as expand_around): ``cost.value`` when
    the cost offers one (its derivatives are dear), else its expansion's l. A line search that
    rejects most candidates needs only this."""
    samples = _one_trajectory(x_mean, u_mean, extras, state_slices)
    value = getattr(cost, "value", None)
    return value(samples) if value is not None else cost.expand(samples).l


def _one_trajectory(x_mean, u_mean, extras, state_slices) -> SampleBatch:
    x = check_array("x_mean", x_mean, (None, None))
    u = check_array("u_mean", u_mean, (x.shape[0], None))
    batch_extras = {key: np.asarray(val)[None] for key, val in (extras or {}).items()}
    return SampleBatch(x[None], u[None], state_slices=state_slices or {}, extras=batch_extras)
