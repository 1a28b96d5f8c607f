"""MujocoDynamicsModel: exact steps, finite-difference Jacobians against analytic ones and
against second-order Taylor behaviour, and input checks."""

import mujoco
import numpy as np
import pytest

from gps_ros.core.known_model import DynamicsModel
from gps_ros.sim.known_model import MujocoDynamicsModel
from gps_ros.sim.locomotion import swimmer_task, walker_task

G, LENGTH, MASS, DT, I_EXTRA = 9.81, 0.7, 1.3, 0.01, 1e-3

# A point-like mass on a massless rod, hinge about y, no damping / armature / contacts /
# limits, semi-implicit Euler: v' = v + dt (u - m g l sin q) / I, q' = q + dt v',
# with I = m l^2 + I_extra (the inertia about the bob's own centre).
PENDULUM_XML = f"""
<mujoco>
  <option timestep="{DT}" integrator="Euler" gravity="0 0 -{G}">
    <flag contact="disable"/>
  </option>
  <worldbody>
    <body>
      <joint name="hinge" type="hinge" axis="0 1 0"/>
      <inertial pos="0 0 -{LENGTH}" mass="{MASS}" diaginertia="{I_EXTRA} {I_EXTRA} {I_EXTRA}"/>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" gear="1"/></actuator>
</mujoco>
"""
INERTIA = MASS * LENGTH**2 + I_EXTRA


def pendulum_step(x, u):
    q, v = x
    v_next = v + DT * (u[0] - MASS * G * LENGTH * np.sin(q)) / INERTIA
    return np.array([q + DT * v_next, v_next])


def pendulum_jacobians(x):
    dvdq = -DT * MASS * G * LENGTH * np.cos(x[0]) / INERTIA
    fx = np.array([[1.0 + DT * dvdq, DT], [dvdq, 1.0]])
    fu = np.array([[DT * DT / INERTIA], [DT / INERTIA]])
    return fx, fu


@pytest.fixture(scope="module")
def pendulum():
    return mujoco.MjModel.from_xml_string(PENDULUM_XML)


def test_is_a_dynamics_model(pendulum):
    dyn = MujocoDynamicsModel(pendulum)
    assert isinstance(dyn, DynamicsModel)
    assert (dyn.dX, dyn.dU) == (2, 1)


def test_pendulum_step_and_jacobian_match_semi_implicit_euler(pendulum):
    dyn = MujocoDynamicsModel(pendulum)
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-2.5, 2.5, 20), rng.uniform(-3, 3, 20)])
    U = rng.uniform(-2, 2, (20, 1))
    fx, fu, x_next = dyn.linearize(X, U)
    for t in range(20):
        np.testing.assert_allclose(dyn.step(X[t], U[t]), pendulum_step(X[t], U[t]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(x_next[t], pendulum_step(X[t], U[t]), rtol=0, atol=1e-12)
        fx_true, fu_true = pendulum_jacobians(X[t])
        np.testing.assert_allclose(fx[t], fx_true, rtol=0, atol=1e-7)
        np.testing.assert_allclose(fu[t], fu_true, rtol=1e-6, atol=1e-9)


def test_pendulum_substeps_chain_the_jacobians(pendulum):
    dyn = MujocoDynamicsModel(pendulum, control_substeps=3)
    x, u = np.array([0.8, -1.2]), np.array([0.5])
    fx_true, fu_true, x_k = np.eye(2), np.zeros((2, 1)), x
    for _ in range(3):
        a, b = pendulum_jacobians(x_k)
        fx_true, fu_true = a @ fx_true, a @ fu_true + b
        x_k = pendulum_step(x_k, u)
    fx, fu, x_next = dyn.linearize(x[None], u[None])
    np.testing.assert_allclose(x_next[0], x_k, atol=1e-12)
    np.testing.assert_allclose(dyn.step(x, u), x_k, atol=1e-12)
    np.testing.assert_allclose(fx[0], fx_true, atol=1e-7)
    np.testing.assert_allclose(fu[0], fu_true, rtol=1e-6, atol=1e-9)


def test_large_step_gives_the_centred_secant(pendulum):
    """fd_eps up to 0.1 is a secant: column j of fx is (f(x + ε e_j) − f(x − ε e_j)) / 2ε of the
    exact semi-implicit Euler step, which differs from the derivative by O(ε²) for the pendulum."""
    eps = 0.05
    dyn = MujocoDynamicsModel(pendulum, fd_eps=eps)
    x, u = np.array([0.8, -1.2]), np.array([0.5])
    fx, fu, _ = dyn.linearize(x[None], u[None])
    secant = np.stack([(pendulum_step(x + eps * e, u) - pendulum_step(x - eps * e, u)) / (2 * eps) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(fx[0], secant, rtol=0, atol=1e-9)
    assert abs(fx[0, 1, 0] - pendulum_jacobians(x)[0][1, 0]) > 1e-5  # the secant, not the derivative
    np.testing.assert_allclose(fu[0], pendulum_jacobians(x)[1], rtol=1e-6)


def test_swimmer_linearisation_error_is_second_order():
    task = swimmer_task()
    dyn = task.dynamics
    rng = np.random.default_rng(1)
    # away from the joint limits (+-100 deg); small steps keep each perturbation on one
    # side of the fluid drag's kink at zero relative velocity
    X = np.concatenate([rng.uniform(-0.5, 0.5, (4, 5)), rng.uniform(-0.5, 0.5, (4, 5))], axis=1)
    U = rng.uniform(-5, 5, (4, 2))
    fx, fu, x_next = dyn.linearize(X, U)
    for t in range(4):
        dx, du = rng.standard_normal(10), rng.standard_normal(2)
        errors = []
        for h in (0.002, 0.001, 0.0005):
            actual = dyn.step(X[t] + h * dx, U[t] + h * du)
            predicted = x_next[t] + fx[t] @ (h * dx) + fu[t] @ (h * du)
            errors.append(np.linalg.norm(actual - predicted))
        first_order = np.linalg.norm(fx[t] @ (0.0005 * dx) + fu[t] @ (0.0005 * du) - 0.0005 * dx)
        assert errors[2] < 0.05 * first_order
        ratios = np.array(errors[:-1]) / np.array(errors[1:])
        assert np.all((ratios > 3.5) & (ratios < 4.5)), ratios


def test_walker_step_is_a_pure_function_of_state_and_action():
    task = walker_task()
    dyn = task.dynamics
    x, u = task.rest_state, np.full(task.dU, 3.0)
    first = dyn.step(x, u)
    dyn.step(first, -u)  # leaves a different solver warm start behind
    np.testing.assert_array_equal(dyn.step(x, u), first)
    _, _, x_next = dyn.linearize(np.stack([x, first]), np.stack([u, -u]))
    np.testing.assert_array_equal(x_next[0], first)
    np.testing.assert_array_equal(x_next[1], dyn.step(first, -u))


def test_refuses_quaternion_joints():
    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><body name="ball_body"><freejoint name="floating"/>'
        '<geom size="0.1"/></body></worldbody></mujoco>'
    )
    with pytest.raises(ValueError, match="'floating'.*free"):
        MujocoDynamicsModel(model)


@pytest.mark.parametrize("kwargs, field", [({"control_substeps": 0}, "control_substeps"), ({"fd_eps": -1.0}, "fd_eps"), ({"fd_eps": 0.2}, "fd_eps")])
def test_bad_settings_name_the_field(pendulum, kwargs, field):
    with pytest.raises(ValueError, match=field):
        MujocoDynamicsModel(pendulum, **kwargs)


def test_bad_arrays_name_the_field(pendulum):
    dyn = MujocoDynamicsModel(pendulum)
    with pytest.raises(ValueError, match=r"x: expected shape \[2\], got \[3\]"):
        dyn.step(np.zeros(3), np.zeros(1))
    with pytest.raises(ValueError, match="u: expected finite"):
        dyn.step(np.zeros(2), np.array([np.nan]))
    with pytest.raises(ValueError, match=r"U: expected shape \[4, 1\]"):
        dyn.linearize(np.zeros((4, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="model"):
        MujocoDynamicsModel("pendulum.xml")
