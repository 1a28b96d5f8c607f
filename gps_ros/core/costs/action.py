"""Quadratic action (torque) penalty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.costs.config_checks import check_scalar, check_vector
from gps_ros.core.costs.ramps import ramp_weights
from gps_ros.core.samples import SampleBatch


@dataclass(frozen=True, eq=False, kw_only=True)
class ActionCost:
    """``l = ramp_t * 0.5 u^T diag(weights) u``.

    weights: [dU], >= 0; ramp / final_multiplier: see ``ramp_weights``.
    """

    weights: np.ndarray
    ramp: str = "constant"
    final_multiplier: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", check_vector("weights", self.weights, nonnegative=True))
        object.__setattr__(self, "final_multiplier", check_scalar("final_multiplier", self.final_multiplier, minimum=0.0))
        ramp_weights(self.ramp, 1, self.final_multiplier)

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Expansion ``[N, T, ...]``; x does not enter, so lx, lxx, lux are zero."""
        if samples.dU != self.weights.shape[0]:
            raise ValueError(f"weights: expected length dU = {samples.dU}, got {self.weights.shape[0]}")
        ramp = ramp_weights(self.ramp, samples.T, self.final_multiplier)[None, :, None]  # [1, T, 1]
        wu = ramp * self.weights * samples.U
        out = CostExpansion.zeros(samples.N, samples.T, samples.dX, samples.dU)
        luu = np.broadcast_to(ramp[..., None] * np.diag(self.weights), out.luu.shape).copy()
        return CostExpansion(0.5 * np.sum(wu * samples.U, axis=-1), out.lx, wu, out.lxx, luu, out.lux)
