"""Checks for cost configuration fields, worded like gps_ros.core.validation."""

from __future__ import annotations

import math

import numpy as np

from gps_ros.core.validation import check_array


def check_scalar(name: str, value: object, *, minimum: float = -math.inf, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` if ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or out < minimum or (strict and out == minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return out


def check_vector(name: str, value: object, size: int | None = None, *, nonnegative: bool = False) -> np.ndarray:
    """``value`` as a finite float vector ``[size]`` (any length if ``size`` is None)."""
    vec = check_array(name, value, (size,))
    if nonnegative and np.any(vec < 0):
        raise ValueError(f"{name}: expected values >= 0, got {vec.tolist()}")
    return vec
