"""Time ramps: how a cost's weight grows along the horizon (GPS ``RAMP_*`` options)."""

from __future__ import annotations

import math

import numpy as np

RAMP_KINDS = ("constant", "linear", "quadratic", "final_only")


def ramp_weights(kind: str, T: int, final_multiplier: float = 1.0) -> np.ndarray:
    """Per-step weights ``[T]``, with the last step further scaled by ``final_multiplier``.

    constant: 1; linear: (t+1)/T; quadratic: ((t+1)/T)^2; final_only: 0 except 1 at T-1.
    Ramping to 1 at T-1 (not 0 at t=0) keeps the first step's cost from vanishing.
    """
    if kind not in RAMP_KINDS:
        raise ValueError(f"ramp: expected one of {list(RAMP_KINDS)}, got {kind!r}")
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T: expected an integer >= 1, got {T!r}")
    if isinstance(final_multiplier, bool) or not isinstance(final_multiplier, (int, float, np.number)) \
            or not math.isfinite(final_multiplier) or final_multiplier < 0:
        raise ValueError(f"final_multiplier: expected a finite number >= 0, got {final_multiplier!r}")
    progress = np.arange(1, T + 1, dtype=np.float64) / T
    if kind == "constant":
        weights = np.ones(T)
    elif kind == "linear":
        weights = progress
    elif kind == "quadratic":
        weights = progress**2
    else:
        weights = np.zeros(T)
        weights[-1] = 1.0
    weights[-1] *= float(final_multiplier)
    return weights
