"""Target-tracking costs on part of the state: joint targets and end-effector points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.costs.config_checks import check_scalar, check_vector
from gps_ros.core.costs.penalty import l1_l2_penalty
from gps_ros.core.costs.ramps import ramp_weights
from gps_ros.core.samples import SampleBatch
from gps_ros.core.validation import check_array


@dataclass(frozen=True, eq=False, kw_only=True)
class PointPenaltyCost:
    """Shared part of the tracking costs: ``ramp_t * l1_l2_penalty(x[part] - target)``.

    Exactly one of slice (a name in ``samples.state_slices``) or indices ([dP] state
    indices) picks the part. target: [dP] (default zeros); weights: [dP] per-dimension
    weights w (default ones); l1, l2 >= 0; alpha > 0; ramp / final_multiplier: see
    ``ramp_weights``.
    """

    slice: str | None = None
    indices: np.ndarray | None = None
    target: np.ndarray | None = None
    weights: np.ndarray | None = None
    l1: float = 0.0
    l2: float = 1.0
    alpha: float = 1e-5
    ramp: str = "constant"
    final_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if (self.slice is None) == (self.indices is None):
            raise ValueError(f"slice, indices: expected exactly one of them, got slice={self.slice!r}, indices={self.indices!r}")
        if self.slice is not None and not isinstance(self.slice, str):
            raise ValueError(f"slice: expected the name of a state slice, got {self.slice!r}")
        size = None
        if self.indices is not None:
            idx = check_array("indices", self.indices, (None,))
            if idx.size == 0 or np.any(idx < 0) or np.any(idx != np.round(idx)) or np.unique(idx).size != idx.size:
                raise ValueError(f"indices: expected distinct integer state indices >= 0, got {idx.tolist()}")
            object.__setattr__(self, "indices", idx.astype(np.int64))
            size = idx.size
        if self.weights is not None:
            object.__setattr__(self, "weights", check_vector("weights", self.weights, size, nonnegative=True))
            size = self.weights.size
        if self.target is not None:
            object.__setattr__(self, "target", check_vector("target", self.target, size))
        object.__setattr__(self, "l1", check_scalar("l1", self.l1, minimum=0.0))
        object.__setattr__(self, "l2", check_scalar("l2", self.l2, minimum=0.0))
        object.__setattr__(self, "alpha", check_scalar("alpha", self.alpha, minimum=0.0, strict=True))
        object.__setattr__(self, "final_multiplier", check_scalar("final_multiplier", self.final_multiplier, minimum=0.0))
        ramp_weights(self.ramp, 1, self.final_multiplier)

    def state_indices(self, samples: SampleBatch) -> np.ndarray:
        """The penalised state indices ``[dP]``, checked against the batch's layout."""
        if self.slice is not None:
            if self.slice not in samples.state_slices:
                raise ValueError(f"slice: expected one of the state slices {sorted(samples.state_slices)}, got {self.slice!r}")
            part = samples.state_slices[self.slice]
            idx = np.arange(part.start, part.stop)
        else:
            idx = self.indices
            if idx.max() >= samples.dX:
                raise ValueError(f"indices: expected values < dX = {samples.dX}, got {idx.tolist()}")
        for name in ("weights", "target"):
            vec = getattr(self, name)
            if vec is not None and vec.size != idx.size:
                raise ValueError(f"{name}: expected length {idx.size} (the size of the penalised part), got {vec.size}")
        return idx

    def expand_points(self, samples: SampleBatch, idx: np.ndarray, jacobian: np.ndarray | None) -> CostExpansion:
        """Expansion of the penalty on ``x[..., idx]``, mapped to state space.

        jacobian: [N, T, dP, dX] of the penalised points w.r.t. x, or None for the
        exact selection of ``idx``. With a Jacobian, lxx = J^T H J (Gauss-Newton: the
        points' second derivatives are not available).
        """
        d = samples.X[:, :, idx] if self.target is None else samples.X[:, :, idx] - self.target
        weights = np.ones(idx.size) if self.weights is None else self.weights
        l, dl, ddl = l1_l2_penalty(d, weights, self.l1, self.l2, self.alpha)
        ramp = ramp_weights(self.ramp, samples.T, self.final_multiplier)[None, :]  # [1, T]
        dl = ramp[..., None] * dl
        ddl = ramp[..., None, None] * ddl
        out = CostExpansion.zeros(samples.N, samples.T, samples.dX, samples.dU)
        if jacobian is None:
            out.lx[..., idx] = dl
            out.lxx[..., idx[:, None], idx[None, :]] = ddl
            lx, lxx = out.lx, out.lxx
        else:
            lx = np.einsum("ntpi,ntp->nti", jacobian, dl)
            lxx = np.einsum("ntpi,ntpq,ntqj->ntij", jacobian, ddl, jacobian, optimize=True)
        return CostExpansion(ramp * l, lx, out.lu, lxx, out.luu, out.lux)


@dataclass(frozen=True, eq=False, kw_only=True)
class StateCost(PointPenaltyCost):
    """Tracking of a state target (e.g. joint angles), exact derivatives through the selection."""

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Expansion ``[N, T, ...]``."""
        return self.expand_points(samples, self.state_indices(samples), None)


@dataclass(frozen=True, eq=False, kw_only=True)
class EndEffectorPointCost(PointPenaltyCost):
    """The GPS "FK cost": penalty on end-effector points stored in the state.

    The points x[slice] (slice defaults to "ee_points" when neither slice nor indices
    is given) are already relative to their target (or ``target`` is subtracted). Derivatives go through ``samples.extras[jacobian_key]`` [N, T, dP, dX]
    when present (Gauss-Newton lxx), else through the slice's selection (exact).
    """

    slice: str | None = None
    jacobian_key: str = "ee_point_jacobians"

    def __post_init__(self) -> None:
        if self.slice is None and self.indices is None:
            # The ee points' usual slice name is the default only when no part is picked.
            object.__setattr__(self, "slice", "ee_points")
        if not isinstance(self.jacobian_key, str):
            raise ValueError(f"jacobian_key: expected the name of a samples.extras entry, got {self.jacobian_key!r}")
        super().__post_init__()

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Expansion ``[N, T, ...]``."""
        idx = self.state_indices(samples)
        jacobian = samples.extras.get(self.jacobian_key)
        if jacobian is not None:
            jacobian = check_array(f"extras[{self.jacobian_key!r}]", jacobian, (samples.N, samples.T, idx.size, samples.dX))
        return self.expand_points(samples, idx, jacobian)
