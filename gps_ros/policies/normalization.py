"""Input normalisation of the global policy: obs_n = (obs - shift) * scale, per dimension.

Low-dimensional entries use the data mean and 1/std; image entries are only scaled to
[0, 1] (shift 0, scale 1/image_range), since per-pixel statistics add nothing the
conv layers cannot learn and would tie the policy to one lighting condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_ros.core.validation import check_array
from gps_ros.policies.networks import PolicyArchitecture


@dataclass(frozen=True)
class Normalization:
    """shift: [dO]; scale: [dO]; n_fit: number of observation rows it was fitted on (0: not fitted)."""

    shift: np.ndarray
    scale: np.ndarray
    n_fit: int = 0

    def __post_init__(self) -> None:
        shift = check_array("shift", self.shift, (None,))
        scale = check_array("scale", self.scale, (shift.shape[0],))
        if np.any(scale <= 0):
            raise ValueError(f"scale: expected positive values, got min {scale.min()}")
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "scale", scale)

    @property
    def fitted(self) -> bool:
        return self.n_fit > 0

    @classmethod
    def identity(cls, arch: PolicyArchitecture) -> Normalization:
        """No shift; images scaled to [0, 1]; what an unfitted policy uses."""
        return cls(np.zeros(arch.dO), _image_scale(arch, np.ones(arch.dO)))

    @classmethod
    def fit(cls, obs: np.ndarray, arch: PolicyArchitecture, min_std: float = 1e-6) -> Normalization:
        """Fit to obs [N, T, dO] (or [M, dO]); dimensions with std < min_std keep scale 1
        so constant inputs are centred but not blown up."""
        obs = check_array("obs", obs, None)
        if obs.ndim < 1 or obs.shape[-1] != arch.dO:
            raise ValueError(f"obs: expected shape [..., {arch.dO}], got {list(obs.shape)}")
        rows = obs.reshape(-1, arch.dO)
        if rows.shape[0] < 1:
            raise ValueError(f"obs: expected at least one observation, got shape {list(obs.shape)}")
        shift, scale = standardization(rows, min_std)
        if arch.kind == "cnn":
            start, stop = arch.image_slice
            shift[start:stop] = 0.0
        return cls(shift, _image_scale(arch, scale), n_fit=rows.shape[0])

    def apply(self, obs: np.ndarray) -> np.ndarray:
        """Normalised copy of obs [..., dO]."""
        return (obs - self.shift) * self.scale


def standardization(rows: np.ndarray, min_std: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) [d] with (rows - shift) * scale standardised per column of rows [M, d]; columns
    with std < min_std keep scale 1, so constant ones are centred but not blown up."""
    std = rows.std(axis=0)
    return rows.mean(axis=0), np.where(std < min_std, 1.0, 1.0 / np.maximum(std, min_std))


def _image_scale(arch: PolicyArchitecture, scale: np.ndarray) -> np.ndarray:
    if arch.kind == "cnn":
        start, stop = arch.image_slice
        scale = scale.copy()
        scale[start:stop] = 1.0 / arch.image_range
    return scale
