"""Torque clamps, joint limits, the hold PD and the stale-state watchdog: pure functions.

The controller node calls these every control step; they need no ROS, so the safety
rules are tested on their own. All per-joint arrays are in the task's joint order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gps_ros.core.validation import check_array

ON_ABORT_MODES = ("hold", "zero")


def per_joint(name: str, values: Sequence[float], n: int, default: np.ndarray) -> np.ndarray:
    """A per-joint parameter: empty -> ``default`` [n]; one value -> broadcast; else n values."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        return np.array(default, dtype=np.float64)
    if arr.size == 1:
        arr = np.full(n, arr[0])
    if arr.size != n or np.any(np.isnan(arr)):
        given = np.asarray(values, dtype=float).ravel().tolist()
        raise ValueError(f"{name}: expected 1 or {n} numbers (one per joint), got {given}")
    return arr


@dataclass(frozen=True)
class SafetyLimits:
    """Per-joint limits [n]: effort_low/high (N*m, commands are clamped to them),
    position_low/high (rad or m, a trial ends outside them), velocity (|q̇| above it ends
    a trial), hold_kp/hold_kd (PD gains of the hold controller)."""

    joint_names: tuple[str, ...]
    effort_low: np.ndarray
    effort_high: np.ndarray
    position_low: np.ndarray
    position_high: np.ndarray
    velocity: np.ndarray
    hold_kp: np.ndarray
    hold_kd: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for fname in ("effort_low", "effort_high", "position_low", "position_high", "velocity", "hold_kp", "hold_kd"):
            object.__setattr__(self, fname, check_array(fname, getattr(self, fname), (n,), finite=False))
            if np.any(np.isnan(getattr(self, fname))):
                raise ValueError(f"{fname}: expected numbers (inf allowed), got NaN in {getattr(self, fname).tolist()}")
        for low, high in (("effort_low", "effort_high"), ("position_low", "position_high")):
            if np.any(getattr(self, low) >= getattr(self, high)):
                raise ValueError(f"{low}, {high}: expected low < high per joint, got {getattr(self, low).tolist()} "
                                 f"and {getattr(self, high).tolist()}")
        if np.any(self.effort_low > 0) or np.any(self.effort_high < 0):
            raise ValueError(f"effort_low, effort_high: expected ranges containing 0, got {self.effort_low.tolist()} "
                             f"and {self.effort_high.tolist()}")
        for fname in ("velocity", "hold_kp", "hold_kd"):
            if np.any(getattr(self, fname) < 0):
                raise ValueError(f"{fname}: expected values >= 0, got {getattr(self, fname).tolist()}")


def clamp_effort(u: np.ndarray, limits: SafetyLimits) -> np.ndarray:
    """u [n] clamped into [effort_low, effort_high]; a non-finite entry becomes 0 (never commanded)."""
    safe = np.where(np.isfinite(u), u, 0.0)
    return np.minimum(np.maximum(safe, limits.effort_low), limits.effort_high)


def limit_violation(q: np.ndarray, qd: np.ndarray, limits: SafetyLimits) -> str:
    """Why the joint state q [n], q̇ [n] is unsafe ("" when it is within every limit)."""
    for i, name in enumerate(limits.joint_names):
        if not limits.position_low[i] <= q[i] <= limits.position_high[i]:
            return (f"joint limit: {name} position {q[i]:.6g} outside "
                    f"[{limits.position_low[i]:.6g}, {limits.position_high[i]:.6g}]")
        if not abs(qd[i]) <= limits.velocity[i]:
            return f"joint limit: {name} velocity {qd[i]:.6g} exceeds {limits.velocity[i]:.6g}"
    return ""


def hold_effort(q: np.ndarray, qd: np.ndarray, q_hold: np.ndarray, limits: SafetyLimits) -> np.ndarray:
    """PD torque u = kp (q_hold - q) - kd q̇ [n] toward q_hold [n], clamped to the effort limits."""
    return clamp_effort(limits.hold_kp * (q_hold - q) - limits.hold_kd * qd, limits)


def safe_effort(mode: str, q: np.ndarray, qd: np.ndarray, q_hold: np.ndarray, limits: SafetyLimits) -> np.ndarray:
    """The command after a trial ends early: the hold PD ("hold") or zero torque ("zero")."""
    if mode == "hold":
        return hold_effort(q, qd, q_hold, limits)
    if mode == "zero":
        return np.zeros(len(limits.joint_names))
    raise ValueError(f"on_abort: expected one of {ON_ABORT_MODES}, got {mode!r}")


def is_stale(last_received_s: float | None, now_s: float, timeout_s: float) -> bool:
    """Watchdog: no joint state ever, or none within timeout_s (steady-clock seconds)."""
    return last_received_s is None or now_s - last_received_s > timeout_s
