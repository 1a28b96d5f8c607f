"""Models load, stay still and finite under zero torque, and survive random torques."""

import mujoco
import numpy as np
import pytest

from tests.sim.conftest import TASKS, zero_policy


@pytest.mark.parametrize("name", TASKS)
def test_zero_torque_is_stable(agent_of, name):
    agent = agent_of(name)
    for cond in range(len(agent.task.conditions)):
        s = agent.sample(zero_policy(agent), cond, noise=np.zeros((agent.T, agent.dU)), seed=0)
        assert np.all(np.isfinite(s.X))
        # Nothing pushes the system (gravity compensated / planar), so it stays at rest.
        assert np.abs(s.state("ee_point_velocities")).max() < 1e-3
        assert np.all(s.U == 0)


@pytest.mark.parametrize("name", ["pr2_peg", "reacher3", "pointmass_obstacle"])
def test_random_torques_stay_bounded_and_clamped(agent_of, name):
    agent = agent_of(name)
    s = agent.sample_many(zero_policy(agent, scale=100.0), [0, None], seed=3)
    assert np.all(np.isfinite(s.X))
    assert np.abs(s.state("ee_point_velocities")).max() < 15.0
    # Noise of std 10 saturates the actuators: the applied torques sit on the ctrlrange.
    low, high = agent.model.actuator_ctrlrange.T
    assert np.all(s.U >= low - 1e-12) and np.all(s.U <= high + 1e-12)
    assert np.any(np.isclose(s.U, high)) and np.any(np.isclose(s.U, low))


def test_pr2_model_is_plausible(agent_of):
    m = agent_of("pr2_peg").model
    assert m.nu == 7 and m.nv == 7
    # dt = 0.05 s of control over several physics steps
    assert 0.0025 <= m.opt.timestep <= 0.005
    total_mass = m.body_subtreemass[m.body("r_shoulder_pan_link").id]
    assert 35.0 < total_mass < 55.0
    upper_arm = np.linalg.norm(m.body_pos[m.body("r_elbow_flex_link").id])
    forearm = np.linalg.norm(m.body_pos[m.body("r_wrist_flex_link").id])
    assert abs(upper_arm - 0.4) < 0.01 and abs(forearm - 0.321) < 0.01
    assert np.all(m.dof_damping > 0)
    assert int(m.opt.integrator) == int(mujoco.mjtIntegrator.mjINT_IMPLICITFAST)
