"""Safety rules of the controller (pure functions, no ROS): clamps, limits, hold PD, watchdog."""

import numpy as np
import pytest

from gps_ros.ros.safety import (
    SafetyLimits, clamp_effort, hold_effort, is_stale, limit_violation, per_joint, safe_effort,
)

INF = np.inf


def limits(**overrides):
    fields = dict(
        joint_names=("shoulder", "elbow"),
        effort_low=np.array([-1.0, -2.0]), effort_high=np.array([1.0, 3.0]),
        position_low=np.array([-0.5, -INF]), position_high=np.array([0.5, INF]),
        velocity=np.array([2.0, INF]), hold_kp=np.array([10.0, 4.0]), hold_kd=np.array([1.0, 0.5]),
    )
    fields.update(overrides)
    return SafetyLimits(**fields)


def test_per_joint_default_broadcast_and_wrong_length():
    np.testing.assert_array_equal(per_joint("kp", [], 3, np.array([1.0, 2.0, 3.0])), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(per_joint("kp", [4.0], 3, np.zeros(3)), [4.0, 4.0, 4.0])
    with pytest.raises(ValueError, match=r"kp: expected 1 or 3 numbers .* got \[1.0, 2.0\]"):
        per_joint("kp", [1.0, 2.0], 3, np.zeros(3))


@pytest.mark.parametrize("field, value, message", [
    ("effort_low", np.array([-1.0, 4.0]), "effort_low, effort_high: expected low < high"),
    ("position_high", np.array([-0.6, INF]), "position_low, position_high: expected low < high"),
    ("effort_low", np.array([0.5, -2.0]), "expected ranges containing 0"),
    ("velocity", np.array([-1.0, 1.0]), "velocity: expected values >= 0"),
    ("hold_kp", np.array([np.nan, 1.0]), "hold_kp: expected numbers"),
    ("hold_kd", np.array([1.0]), r"hold_kd: expected shape \[2\]"),
])
def test_bad_limits_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        limits(**{field: value})


def test_clamp_effort_bounds_each_joint_and_zeroes_non_finite():
    lim = limits()
    np.testing.assert_array_equal(clamp_effort(np.array([5.0, -5.0]), lim), [1.0, -2.0])
    np.testing.assert_array_equal(clamp_effort(np.array([0.25, 2.5]), lim), [0.25, 2.5])
    np.testing.assert_array_equal(clamp_effort(np.array([np.nan, np.inf]), lim), [0.0, 0.0])


def test_limit_violation_names_joint_and_quantity():
    lim = limits()
    assert limit_violation(np.array([0.4, 100.0]), np.array([-1.9, 1e6]), lim) == ""
    reason = limit_violation(np.array([0.6, 0.0]), np.zeros(2), lim)
    assert reason == "joint limit: shoulder position 0.6 outside [-0.5, 0.5]"
    assert limit_violation(np.zeros(2), np.array([-2.5, 0.0]), lim) == "joint limit: shoulder velocity -2.5 exceeds 2"
    assert "shoulder position nan" in limit_violation(np.array([np.nan, 0.0]), np.zeros(2), lim)


def test_hold_pd_torque_and_its_clamp():
    lim = limits()
    # u = kp (q* - q) - kd q̇ by hand: joint 0: 10 (0.1 - 0.05) - 1 (0.2) = 0.3;
    # joint 1: 4 (1 - 0) - 0.5 (2) = 3 (at its limit 3)
    u = hold_effort(np.array([0.05, 0.0]), np.array([0.2, 2.0]), np.array([0.1, 1.0]), lim)
    np.testing.assert_allclose(u, [0.3, 3.0])
    np.testing.assert_allclose(hold_effort(np.array([0.0, 0.0]), np.zeros(2), np.array([1.0, -1.0]), lim), [1.0, -2.0])


def test_safe_effort_modes():
    lim = limits()
    q, qd, target = np.array([0.0, 0.0]), np.array([0.1, 0.0]), np.array([0.02, 0.0])
    np.testing.assert_allclose(safe_effort("hold", q, qd, target, lim), [10 * 0.02 - 0.1, 0.0])
    np.testing.assert_array_equal(safe_effort("zero", q, qd, target, lim), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"on_abort: expected one of \('hold', 'zero'\), got 'brake'"):
        safe_effort("brake", q, qd, target, lim)


def test_watchdog():
    assert is_stale(None, 10.0, 0.5)
    assert not is_stale(9.6, 10.0, 0.5)
    assert is_stale(9.4, 10.0, 0.5)
