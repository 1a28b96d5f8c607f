"""Locomotion tasks: cost derivatives against finite differences, the swimmer swims under a
sinusoidal gait, the hand-written gait walks the walker, and input checks."""

from dataclasses import replace

import numpy as np
import pytest

from gps_ros.core.costs.base import Cost
from gps_ros.core.samples import SampleBatch
from gps_ros.sim.gait import GaitController, demonstration
from gps_ros.sim.locomotion import CentreOfMassVelocity, LocomotionCost, swimmer_task, walker_task


@pytest.fixture(scope="module")
def swimmer():
    return swimmer_task()


@pytest.fixture(scope="module")
def walker():
    return walker_task()


def sinusoidal_gait(task, amplitude=10.0, period=1.0, phase=1.5):
    w = 2.0 * np.pi / period * task.dt * np.arange(task.T)
    return amplitude * np.stack([np.sin(w), np.sin(w - phase)], axis=1)


def test_shapes_and_state_layout(swimmer, walker):
    assert (swimmer.dX, swimmer.dU, walker.dX, walker.dU) == (10, 2, 18, 6)
    assert walker.state_slices == {"qpos": slice(0, 9), "qvel": slice(9, 18)}
    assert walker.rest_state[1] == pytest.approx(1.25)  # root z is the torso centre's height


@pytest.mark.parametrize("cost", [
    LocomotionCost(w_u=0.3, velocity_index=5, target_velocity=0.2),
    LocomotionCost(w_u=0.1, velocity_index=9, target_velocity=0.8, w_v=2.0, height_index=1, target_height=1.2, w_h=3.0),
])
def test_cost_value_and_derivatives_match_finite_differences(cost):
    rng = np.random.default_rng(0)
    N, T, dX, dU = 2, 3, 18, 6
    X, U = rng.standard_normal((N, T, dX)), rng.standard_normal((N, T, dU))
    assert isinstance(cost, Cost)
    exp = cost.expand(SampleBatch(X, U))
    direct = cost.w_u * (U**2).sum(-1) + cost.w_v * (X[..., cost.velocity_index] - cost.target_velocity) ** 2
    if cost.height_index is not None:
        direct += cost.w_h * (X[..., cost.height_index] - cost.target_height) ** 2
    np.testing.assert_allclose(exp.l, direct, rtol=1e-12)
    np.testing.assert_allclose(cost.value(SampleBatch(X, U)), direct, rtol=1e-12)

    def l_of(z):  # z: [dX + dU] for sample 0, step 1
        Xp, Up = X.copy(), U.copy()
        Xp[0, 1], Up[0, 1] = z[:dX], z[dX:]
        return cost.expand(SampleBatch(Xp, Up)).l[0, 1]

    z0, eps = np.concatenate([X[0, 1], U[0, 1]]), 1e-4
    eye = np.eye(dX + dU)
    grad = np.array([(l_of(z0 + eps * e) - l_of(z0 - eps * e)) / (2 * eps) for e in eye])
    hess = np.array([[(l_of(z0 + eps * (a + b)) - l_of(z0 + eps * (a - b)) - l_of(z0 - eps * (a - b)) + l_of(z0 - eps * (a + b)))
                      / (4 * eps**2) for b in eye] for a in eye])
    np.testing.assert_allclose(np.concatenate([exp.lx[0, 1], exp.lu[0, 1]]), grad, atol=1e-6)
    np.testing.assert_allclose(exp.lxx[0, 1], hess[:dX, :dX], atol=1e-5)
    np.testing.assert_allclose(exp.luu[0, 1], hess[dX:, dX:], atol=1e-5)
    np.testing.assert_allclose(exp.lux[0, 1], hess[dX:, :dX], atol=1e-5)


def _com_x(model, qpos):
    import mujoco

    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    return data.subtree_com[1, 0]


def test_centre_of_mass_velocity_is_the_rate_of_the_centre_of_mass_and_its_cost_gradient_exact(swimmer):
    """v against the centre of mass moved along qvel (central differences of mj_comPos's
    subtree_com, not the Jacobian); the cost's lx against finite differences of its l, and
    lxx the Gauss-Newton 2 w_v ∇v ∇vᵀ with ∇v from finite differences of v."""
    model, nq = swimmer.model, swimmer.model.nq
    feature = CentreOfMassVelocity(model)
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.uniform(-1.0, 1.0, (2, 3, nq)), rng.standard_normal((2, 3, nq))], axis=-1)
    v, grad = feature.value_and_gradient(X)
    h = 1e-6
    direct = [(_com_x(model, x[:nq] + h * x[nq:]) - _com_x(model, x[:nq] - h * x[nq:])) / (2 * h) for x in X.reshape(-1, 2 * nq)]
    np.testing.assert_allclose(v.ravel(), direct, atol=1e-7)
    eye = np.eye(2 * nq)
    fd_grad = np.array([(feature.value_and_gradient(X[0, 1] + 1e-5 * e)[0] - feature.value_and_gradient(X[0, 1] - 1e-5 * e)[0])
                        / 2e-5 for e in eye])
    np.testing.assert_allclose(grad[0, 1], fd_grad, atol=1e-6)

    cost = LocomotionCost(w_u=0.3, com_velocity=feature, target_velocity=0.2, w_v=2.0)
    U = rng.standard_normal((2, 3, 2))
    exp = cost.expand(SampleBatch(X, U))
    np.testing.assert_allclose(exp.l, 0.3 * (U**2).sum(-1) + 2.0 * (v - 0.2) ** 2, rtol=1e-12)
    np.testing.assert_allclose(cost.value(SampleBatch(X, U)), exp.l, rtol=1e-12)  # the line searches' value

    def l_of(x):
        Xp = X.copy()
        Xp[0, 1] = x
        return cost.expand(SampleBatch(Xp, U)).l[0, 1]

    lx = np.array([(l_of(X[0, 1] + 1e-5 * e) - l_of(X[0, 1] - 1e-5 * e)) / 2e-5 for e in eye])
    np.testing.assert_allclose(exp.lx[0, 1], lx, atol=1e-5)
    np.testing.assert_allclose(exp.lxx[0, 1], 4.0 * np.outer(fd_grad, fd_grad), atol=1e-5)


def test_undulating_gait_moves_the_centre_of_mass_steadily_but_sways_the_head(swimmer):
    """Why the swimmer's cost is on the centre of mass: under the sinusoidal gait the head's
    forward velocity swings several times more within a stroke than the centre of mass's."""
    X = swimmer.rollout(swimmer.rest_state, sinusoidal_gait(swimmer))[40:]  # past the start-up
    com = CentreOfMassVelocity(swimmer.model).value(X)
    head = X[:, swimmer.model.nq]
    assert com.mean() > 0.1 and head.std() > 5 * com.std()


def test_sinusoidal_gait_swims_forward(swimmer):
    X0 = np.concatenate([swimmer.rest_state[None], swimmer.initial_states(2, np.random.default_rng(0))])
    U = sinusoidal_gait(swimmer)
    X = np.stack([swimmer.rollout(x0, U) for x0 in X0])
    assert np.all(swimmer.forward_distance(X) > 1.0)  # the swimmer is 1.5 m long
    assert not np.any(swimmer.fell(X))
    still = swimmer.rollout(swimmer.rest_state, np.zeros_like(U))
    assert abs(swimmer.forward_distance(still)) < 1e-9


def test_gait_controller_walks_the_whole_horizon(walker):
    for x0 in walker.initial_states(6, np.random.default_rng(0)):
        X, U = demonstration(walker, x0)
        assert X.shape == (walker.T, walker.dX) and U.shape == (walker.T, walker.dU)
        np.testing.assert_array_equal(X[0], x0)
        np.testing.assert_array_equal(X[1:], walker.rollout(x0, U)[1:])  # U reproduces X in open loop
        assert not walker.fell(X) and walker.walked(X)
        assert walker.forward_distance(X) > 1.0
        assert np.all(np.abs(U) <= walker.model.actuator_ctrlrange[:, 1] + 1e-12)


def test_gait_swing_weight_is_mirror_symmetric(walker):
    """Swapping the legs' joint angles and velocities swaps their swing weights (g -> 1 - g), and
    the legs' commands swap with them; the symmetric rest pose sits at g = 1/2."""
    controller = GaitController(walker)
    legs = {leg: [walker.model.joint(f"{leg}_{j}").qposadr[0] for j in ("hip", "knee", "ankle")] for leg in ("right", "left")}
    acts = {leg: [walker.model.actuator(f"{leg}_{j}").id for j in ("hip", "knee", "ankle")] for leg in ("right", "left")}
    swap = np.arange(walker.nq)
    swap[legs["right"] + legs["left"]] = legs["left"] + legs["right"]
    swap_x = np.concatenate([swap, walker.nq + swap])
    assert controller.swing_weight(walker.rest_state) == pytest.approx(0.5)
    for x in walker.initial_states(5, np.random.default_rng(1)) + 0.3 * np.random.default_rng(2).standard_normal((5, walker.dX)):
        assert controller.swing_weight(x[swap_x]) == pytest.approx(1.0 - controller.swing_weight(x), abs=1e-12)
        u, u_mirror = controller(x), controller(x[swap_x])
        np.testing.assert_allclose(u_mirror[acts["right"]], u[acts["left"]], atol=1e-9)
        np.testing.assert_allclose(u_mirror[acts["left"]], u[acts["right"]], atol=1e-9)


def test_fell_detects_collapse_without_torques(walker):
    X = walker.rollout(walker.rest_state, np.zeros((walker.T, walker.dU)))
    assert walker.fell(X)
    assert walker.fell(X[None]).shape == (1,)
    down = walker.fallen(X)
    assert down.shape == (walker.T,) and not down[0] and down[-1]
    first = int(np.argmax(down))
    assert X[first, walker.height_index] < walker.fall_height or abs(X[first, walker.angle_index]) > walker.fall_angle
    assert X[first - 1, walker.height_index] >= walker.fall_height and abs(X[first - 1, walker.angle_index]) <= walker.fall_angle


def test_initial_states_perturb_around_rest(swimmer):
    X0 = swimmer.initial_states(4000, np.random.default_rng(3))
    assert X0.shape == (4000, 10)
    np.testing.assert_array_equal(X0[:, :3], 0.0)  # root pose is not perturbed
    np.testing.assert_allclose(X0[:, 3:5].std(0), swimmer.init_qpos_std, rtol=0.05)
    np.testing.assert_allclose(X0[:, 5:].std(0), swimmer.init_qvel_std, rtol=0.05)


@pytest.mark.parametrize("name", ["swimmer", "walker"])
def test_hidden_root_coordinates_change_neither_dynamics_nor_cost(name, request):
    """What hiding unobserved_qpos from the policy rests on: shifting the root along them shifts
    the next state by the same amount and leaves the cost unchanged."""
    task = request.getfixturevalue(name)
    hidden = list(task.unobserved_qpos)
    assert hidden and sorted(set(range(task.dX)) - set(task.policy_inputs)) == hidden
    rng = np.random.default_rng(0)
    x = task.initial_states(1, rng)[0]
    u = rng.uniform(-1.0, 1.0, task.dU)
    shift = np.zeros(task.dX)
    shift[hidden] = rng.uniform(-2.0, 2.0, len(hidden))
    np.testing.assert_allclose(task.dynamics.step(x + shift, u), task.dynamics.step(x, u) + shift, atol=1e-9)
    X = np.stack([x, task.dynamics.step(x, u)])[None]
    U = np.stack([u, u])[None]
    cost = task.cost.expand(SampleBatch(X, U)).l
    np.testing.assert_allclose(task.cost.expand(SampleBatch(X + shift, U)).l, cost, rtol=1e-12)


@pytest.mark.parametrize("make, field", [
    (lambda: LocomotionCost(w_u=-1.0, velocity_index=5, target_velocity=0.2), "w_u"),
    (lambda: LocomotionCost(w_u=1.0, velocity_index=-1, target_velocity=0.2), "velocity_index"),
    (lambda: LocomotionCost(w_u=1.0, velocity_index=5, target_velocity=np.nan), "target_velocity"),
    (lambda: replace(swimmer_task(), dt=0.013), "dt"),
    (lambda: replace(swimmer_task(), T=0), "T"),
    (lambda: replace(swimmer_task(), cost=LocomotionCost(w_u=1.0, velocity_index=10, target_velocity=0.0)), "cost.velocity_index"),
    (lambda: replace(swimmer_task(), rest_qpos=np.zeros(4)), "rest_qpos"),
    (lambda: replace(swimmer_task(), unobserved_qpos=(0, 5)), "unobserved_qpos"),
    (lambda: replace(swimmer_task(), unobserved_qpos=(1, 1)), "unobserved_qpos"),
    (lambda: swimmer_task().initial_states(0, np.random.default_rng()), "n"),
    (lambda: swimmer_task().fell(np.zeros((5, 9))), "X"),
    (lambda: replace(walker_task(), walk_speed=-0.1), "walk_speed"),
    (lambda: replace(walker_task(), fd_eps=0.5), "fd_eps"),
    (lambda: walker_task().walked(np.zeros(18)), "X"),
    (lambda: LocomotionCost(w_u=1.0, velocity_index=12, target_velocity=0.0).expand(
        SampleBatch(np.zeros((1, 2, 10)), np.zeros((1, 2, 2)))), "velocity_index"),
    (lambda: demonstration(walker_task(), np.zeros(17)), "x0"),
    (lambda: LocomotionCost(w_u=1.0, velocity_index=0, com_velocity=CentreOfMassVelocity(swimmer_task().model),
                            target_velocity=0.0), "com_velocity"),
    (lambda: replace(walker_task(), cost=swimmer_task().cost), "cost.com_velocity: expected a model with state size 18"),
    (lambda: CentreOfMassVelocity(swimmer_task().model, body=0), "body"),
    (lambda: demonstration(swimmer_task(), np.zeros(10)), "task.model"),
])
def test_bad_input_names_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_walked_needs_no_fall_and_the_walk_speed(walker):
    """Synthetic root trajectories: upright at the target height, moving at a constant speed."""
    T = 101
    duration = (T - 1) * walker.dt
    X = np.tile(walker.rest_state, (3, T, 1))
    for n, speed in enumerate((0.0, 0.39, 0.41)):
        X[n, :, walker.x_index] = speed * walker.dt * np.arange(T)
    assert walker.walk_speed == 0.4 and duration == pytest.approx(1.0)
    np.testing.assert_array_equal(walker.walked(X), [False, False, True])
    fallen = X[2].copy()
    fallen[60:, walker.height_index] = walker.fall_height - 0.01
    assert not walker.walked(fallen) and walker.walked(X[2])
