"""Trajectory costs: derivatives against finite differences, ramps and penalties against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from gps_ros.core.costs import (
    ActionCost,
    CostSum,
    EndEffectorPointCost,
    StateCost,
    build_cost,
    expand_around,
    ramp_weights,
)
from gps_ros.core.samples import SampleBatch

N, T, DX, DU = 3, 6, 7, 3
SLICES = {"joint_angles": slice(0, 3), "ee_points": slice(3, 7)}
H = 1e-6


def _batch(X: np.ndarray, U: np.ndarray, extras: dict | None = None) -> SampleBatch:
    return SampleBatch(X, U, state_slices=SLICES, extras=extras or {})


def _random_batch(seed: int = 0) -> SampleBatch:
    rng = np.random.default_rng(seed)
    return _batch(rng.normal(size=(N, T, DX)), rng.normal(size=(N, T, DU)))


def _perturbed(batch: SampleBatch, field: str, i: int, step: float) -> SampleBatch:
    """The batch with x_i (or u_i) moved by ``step`` at every (n, t): each l[n, t] depends only on step (n, t)."""
    X, U = batch.X.copy(), batch.U.copy()
    (X if field == "X" else U)[:, :, i] += step
    return _batch(X, U, batch.extras)


def _central_difference(fn, batch: SampleBatch, field: str, dim: int) -> np.ndarray:
    """d fn(batch) / d field_i, stacked on a last axis of size dim."""
    cols = [(fn(_perturbed(batch, field, i, H)) - fn(_perturbed(batch, field, i, -H))) / (2 * H) for i in range(dim)]
    return np.stack(cols, axis=-1)


def _check_against_finite_differences(cost, batch: SampleBatch) -> None:
    exp = cost.expand(batch)
    assert exp.l.shape == (N, T) and exp.lux.shape == (N, T, DU, DX)
    np.testing.assert_allclose(exp.lx, _central_difference(lambda b: cost.expand(b).l, batch, "X", DX), atol=1e-6)
    np.testing.assert_allclose(exp.lu, _central_difference(lambda b: cost.expand(b).l, batch, "U", DU), atol=1e-6)
    np.testing.assert_allclose(exp.lxx, _central_difference(lambda b: cost.expand(b).lx, batch, "X", DX), atol=1e-5)
    np.testing.assert_allclose(exp.luu, _central_difference(lambda b: cost.expand(b).lu, batch, "U", DU), atol=1e-5)
    np.testing.assert_allclose(exp.lux, _central_difference(lambda b: cost.expand(b).lu, batch, "X", DX), atol=1e-5)
    np.testing.assert_allclose(exp.lxx, np.swapaxes(exp.lxx, -1, -2), atol=1e-12)


TRACKING = dict(l1=0.7, l2=2.0, alpha=0.05, ramp="quadratic", final_multiplier=4.0)
COSTS = {
    "action": ActionCost(weights=[0.5, 1.0, 2.0], ramp="linear", final_multiplier=3.0),
    "state_slice": StateCost(slice="joint_angles", target=[0.1, -0.3, 0.4], weights=[1.0, 0.5, 2.0], **TRACKING),
    "state_indices": StateCost(indices=[5, 0, 2], target=[0.2, 0.0, -0.1], **TRACKING),
    "ee_points_selection": EndEffectorPointCost(weights=[1.0, 2.0, 0.5, 1.5], **TRACKING),
    "ee_points_target": EndEffectorPointCost(slice="ee_points", target=[0.1, 0.2, 0.3, 0.4], l1=1.0, l2=0.0, alpha=0.1),
}


@pytest.mark.parametrize("name", sorted(COSTS))
def test_derivatives_match_finite_differences(name: str) -> None:
    _check_against_finite_differences(COSTS[name], _random_batch())


def test_cost_sum_derivatives_match_finite_differences() -> None:
    _check_against_finite_differences(CostSum(list(COSTS.values()), [1.0, 0.5, 2.0, 0.3, 1.2]), _random_batch(1))


def test_cost_sum_is_weighted_sum_of_parts() -> None:
    batch = _random_batch(2)
    costs, weights = list(COSTS.values()), [1.0, -0.5, 2.0, 0.3, 1.2]
    total = CostSum(costs, weights).expand(batch)
    parts = [c.expand(batch) for c in costs]
    for field in ("l", "lx", "lu", "lxx", "luu", "lux"):
        expected = sum(w * getattr(p, field) for w, p in zip(weights, parts))
        np.testing.assert_allclose(getattr(total, field), expected, atol=1e-12)


# Planar 2-link arm: state x = [q1, q2, p1, p2] with p = tip(q) - target (points relative to target).
LINKS = (1.0, 0.7)
ARM_TARGET = np.array([0.9, 0.8])
ARM_SLICES = {"joint_angles": slice(0, 2), "ee_points": slice(2, 4)}


def _tip(q: np.ndarray) -> np.ndarray:
    a, b = q[..., 0], q[..., 0] + q[..., 1]
    return np.stack([LINKS[0] * np.cos(a) + LINKS[1] * np.cos(b), LINKS[0] * np.sin(a) + LINKS[1] * np.sin(b)], -1)


def _tip_jacobian_in_state(q: np.ndarray) -> np.ndarray:
    """dp/dx [..., 2, 4]: the tip's true Jacobian in the q columns, zero in the p columns."""
    a, b = q[..., 0], q[..., 0] + q[..., 1]
    J = np.zeros(q.shape[:-1] + (2, 4))
    J[..., 0, 0] = -LINKS[0] * np.sin(a) - LINKS[1] * np.sin(b)
    J[..., 0, 1] = -LINKS[1] * np.sin(b)
    J[..., 1, 0] = LINKS[0] * np.cos(a) + LINKS[1] * np.cos(b)
    J[..., 1, 1] = LINKS[1] * np.cos(b)
    return J


def _arm_batch(q: np.ndarray, target: np.ndarray = ARM_TARGET) -> SampleBatch:
    X = np.concatenate([q, _tip(q) - target], axis=-1)
    return SampleBatch(X, np.zeros(q.shape[:-1] + (1,)), state_slices=ARM_SLICES,
                       extras={"ee_point_jacobians": _tip_jacobian_in_state(q)})


ARM_COST = EndEffectorPointCost(weights=[1.0, 2.0], l1=1.0, l2=3.0, alpha=1e-2, ramp="linear", final_multiplier=5.0)


def _arm_cost_of_q(q: np.ndarray, target: np.ndarray = ARM_TARGET) -> np.ndarray:
    return ARM_COST.expand(_arm_batch(q, target)).l


def test_jacobian_maps_point_gradient_to_joint_gradient() -> None:
    q = np.random.default_rng(3).uniform(-np.pi, np.pi, size=(N, T, 2))
    exp = ARM_COST.expand(_arm_batch(q))
    eye = np.eye(2)
    fd = np.stack([(_arm_cost_of_q(q + H * eye[i]) - _arm_cost_of_q(q - H * eye[i])) / (2 * H) for i in range(2)], -1)
    np.testing.assert_allclose(exp.lx[..., :2], fd, rtol=1e-6, atol=1e-7)
    # The cost sees the points only through q here: no gradient on the stored point coordinates.
    np.testing.assert_array_equal(exp.lx[..., 2:], 0.0)


def test_jacobian_gauss_newton_hessian_is_exact_at_the_target() -> None:
    # At p(q) = target, dl/dp = 0, so the neglected second-derivative-of-p term vanishes.
    q_star = np.array([0.4, 1.1])
    target = _tip(q_star)
    q = np.broadcast_to(q_star, (1, T, 2)).copy()
    lxx = ARM_COST.expand(_arm_batch(q, target)).lxx[..., :2, :2]
    h, eye = 1e-4, np.eye(2)
    fd = np.empty((1, T, 2, 2))
    for i in range(2):
        for j in range(2):
            di, dj = h * eye[i], h * eye[j]
            fd[..., i, j] = (_arm_cost_of_q(q + di + dj, target) - _arm_cost_of_q(q + di - dj, target)
                             - _arm_cost_of_q(q - di + dj, target) + _arm_cost_of_q(q - di - dj, target)) / (4 * h * h)
    np.testing.assert_allclose(lxx, fd, rtol=1e-5, atol=1e-6)
    assert np.all(np.linalg.eigvalsh(lxx[0, :-1]) > 0)


def test_penalty_value_by_hand() -> None:
    # w∘d = [2*1.5, 1*4] = [3, 4]: 0.5*l2*25 + l1*sqrt(11 + 25) = 25 + 6.
    cost = StateCost(indices=[1, 4], target=[1.0, -2.0], weights=[2.0, 1.0], l1=1.0, l2=2.0, alpha=11.0)
    X = np.zeros((1, 1, DX))
    X[0, 0, [1, 4]] = [2.5, 2.0]
    np.testing.assert_allclose(cost.expand(_batch(X, np.zeros((1, 1, DU)))).l, [[31.0]])


def test_ee_point_cost_by_indices_or_default_slice() -> None:
    # With indices only, the penalised part is x[indices]: 0.5 * l2 * |x[[1, 4]]|^2 = 0.5 * (9 + 16).
    X = np.zeros((1, 1, DX))
    X[0, 0, [1, 4]] = [3.0, 4.0]
    batch = _batch(X, np.zeros((1, 1, DU)))
    np.testing.assert_allclose(EndEffectorPointCost(indices=[1, 4], l1=0.0, l2=1.0).expand(batch).l, [[12.5]])
    # Neither given: the "ee_points" slice x[3:7], of which only x[4] = 4 is non-zero.
    assert EndEffectorPointCost().slice == "ee_points"
    np.testing.assert_allclose(EndEffectorPointCost(l1=0.0, l2=1.0).expand(batch).l, [[8.0]])
    with pytest.raises(ValueError, match=r"slice, indices: expected exactly one"):
        EndEffectorPointCost(slice="ee_points", indices=[1])


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("constant", [1.0, 1.0, 1.0]),
        ("linear", [0.2, 0.6, 1.0]),
        ("quadratic", [0.04, 0.36, 1.0]),
        ("final_only", [0.0, 0.0, 1.0]),
    ],
)
def test_ramp_values_at_start_middle_end(kind: str, expected: list[float]) -> None:
    np.testing.assert_allclose(ramp_weights(kind, 5, 1.0)[[0, 2, 4]], expected)
    with_final = ramp_weights(kind, 5, 10.0)
    np.testing.assert_allclose(with_final[[0, 2, 4]], expected[:2] + [10.0 * expected[2]])


def test_ramp_applies_to_costs() -> None:
    rng = np.random.default_rng(4)
    U = rng.normal(size=(2, 5, DU))
    w = np.array([0.5, 1.0, 2.0])
    exp = ActionCost(weights=w, ramp="quadratic", final_multiplier=10.0).expand(_batch(np.zeros((2, 5, DX)), U))
    ramp = np.array([0.04, 0.16, 0.36, 0.64, 10.0])
    np.testing.assert_allclose(exp.l, ramp * 0.5 * np.einsum("ntu,u,ntu->nt", U, w, U))
    np.testing.assert_allclose(exp.luu[1, 3], 0.64 * np.diag(w))
    ee = EndEffectorPointCost(ramp="final_only", final_multiplier=2.0).expand(_batch(rng.normal(size=(2, 5, DX)), U))
    assert np.all(ee.l[:, :-1] == 0) and np.all(ee.lxx[:, :-1] == 0) and np.all(ee.l[:, -1] > 0)


def test_expand_around_mean_trajectory() -> None:
    rng = np.random.default_rng(5)
    q = rng.normal(size=(T, 2))
    x_mean = np.concatenate([q, _tip(q) - ARM_TARGET], axis=-1)
    exp = expand_around(ARM_COST, x_mean, np.zeros((T, 1)), {"ee_point_jacobians": _tip_jacobian_in_state(q)}, ARM_SLICES)
    assert exp.l.shape == (1, T) and exp.lxx.shape == (1, T, 4, 4)
    wd2 = np.sum((np.array([1.0, 2.0]) * x_mean[:, 2:]) ** 2, axis=-1)
    ramp = np.arange(1, T + 1) / T
    ramp[-1] *= 5.0
    np.testing.assert_allclose(exp.l[0], ramp * (0.5 * 3.0 * wd2 + np.sqrt(1e-2 + wd2)))


def test_build_cost_from_yaml_mapping() -> None:
    config = {"type": "sum", "terms": [
        {"weight": 2.0, "type": "action", "weights": [1.0, 1.0, 1.0]},
        {"weight": 1.0, "type": "ee_points", "slice": "ee_points", "l1": 1.0, "l2": 10.0, "alpha": 1e-5,
         "ramp": "quadratic", "final_multiplier": 10.0},
        {"type": "state", "indices": [0, 1], "target": [0.5, -0.5]},
    ]}
    X, U = np.zeros((1, 2, DX)), np.ones((1, 2, DU))
    X[0, :, 3:7] = [3.0, 0.0, 4.0, 0.0]
    # action: 2 * 0.5 * 3; ee: ramp [0.25, 10] * (0.5*10*25 + sqrt(1e-5 + 25)); state: 0.5 * 0.5.
    ee = 125.0 + np.sqrt(25.0 + 1e-5)
    np.testing.assert_allclose(build_cost(config).expand(_batch(X, U)).l, [[3.0 + 0.25 * ee + 0.25, 3.0 + 10 * ee + 0.25]])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "quartic"}, "cost.type: expected one of"),
        ({"type": "action"}, "cost.weights: required"),
        ({"type": "action", "weights": [1.0], "ramp": "cubic"}, "cost.ramp: expected one of"),
        ({"type": "sum", "terms": []}, "cost.terms: expected a non-empty list"),
        ({"type": "sum", "terms": [{"type": "action", "weights": [1.0], "wieghts": [1.0]}]}, "cost.terms[0].wieghts: unknown key"),
        ({"type": "sum", "terms": [{"type": "ee_points", "l2": -1.0}]}, "cost.terms[0].l2: expected a finite number >= 0"),
        ({"type": "sum", "terms": [{"type": "ee_points", "alpha": 0.0}]}, "cost.terms[0].alpha: expected a finite number > 0"),
        ({"type": "sum", "terms": [{"type": "ee_points", "weight": "big"}]}, "weight"),
        ({"type": "state", "indices": [0, 1], "weights": [1.0, 2.0, 3.0]}, "cost.weights: expected shape [2], got [3]"),
        ({"type": "state", "slice": "joint_angles", "weights": [1.0, 2.0], "target": [0.0]}, "cost.target: expected shape [2]"),
        ({"type": "state", "indices": [0, 0.5]}, "cost.indices: expected distinct integer"),
        ({"type": "state", "slice": "joint_angles", "indices": [0]}, "cost.slice, indices: expected exactly one"),
        ({"type": "state", "typo": 1, "slice": "joint_angles"}, "cost.typo: unknown key for cost type 'state'"),
    ],
)
def test_build_cost_errors_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build_cost(config)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("cost", "extras", "message"),
    [
        (ActionCost(weights=[1.0, 2.0]), {}, "weights: expected length dU = 3, got 2"),
        (StateCost(slice="elbow"), {}, "slice: expected one of the state slices"),
        (StateCost(indices=[2, 7]), {}, "indices: expected values < dX = 7"),
        (StateCost(slice="joint_angles", target=[0.0, 1.0]), {}, "target: expected length 3"),
        (EndEffectorPointCost(), {"ee_point_jacobians": np.zeros((N, T, 3, DX))},
         "extras['ee_point_jacobians']: expected shape [3, 6, 4, 7], got [3, 6, 3, 7]"),
    ],
)
def test_expand_rejects_mismatched_batch(cost, extras: dict, message: str) -> None:
    batch = _random_batch()
    with pytest.raises(ValueError) as info:
        cost.expand(_batch(batch.X, batch.U, extras))
    assert message in str(info.value)
