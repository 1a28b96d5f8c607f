"""The state vector against MuJoCo data, finite differences of positions, and its slices."""

import mujoco
import numpy as np
import pytest

from gps_ros.sim.task import Condition
from tests.sim.conftest import zero_policy


def _random_state(agent, rng):
    """A random arm configuration and velocity at fixed condition 1 (kinematics current)."""
    agent.reset(1)
    joints = agent.assembler.qpos_adr
    agent.data.qpos[joints] += rng.uniform(-0.3, 0.3, joints.size)
    agent.data.qvel[agent.assembler.dof_adr] = rng.normal(size=joints.size)
    return agent.state()


def _points(agent, qpos):
    d = mujoco.MjData(agent.model)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(agent.model, d)
    sites = [agent.model.site(s).id for s in next(f for f in agent.task.config.state if f.name == "ee_points").sites]
    target = d.site_xpos[agent.model.site(agent.task.config.target_site).id]
    axes = list(next(f for f in agent.task.config.state if f.name == "ee_points").axes)
    return (d.site_xpos[sites] - target)[:, axes].ravel()


@pytest.mark.parametrize("name", ["pr2_peg", "reacher3", "pointmass_obstacle"])
def test_slices_match_data(agent_of, name):
    agent = agent_of(name)
    x = _random_state(agent, np.random.default_rng(0))
    sl, m, d = agent.task.state_slices, agent.model, agent.data
    if "joint_angles" in sl:
        np.testing.assert_array_equal(x[sl["joint_angles"]], d.qpos[agent.assembler.qpos_adr])
        np.testing.assert_array_equal(x[sl["joint_velocities"]], d.qvel[agent.assembler.dof_adr])
    ee = next(f for f in agent.task.config.state if f.name == "ee_points")
    target = d.site_xpos[m.site(agent.task.config.target_site).id]
    expected = np.concatenate([d.site_xpos[m.site(s).id][list(ee.axes)] - target[list(ee.axes)] for s in ee.sites])
    np.testing.assert_allclose(x[sl["ee_points"]], expected, atol=1e-12)
    np.testing.assert_allclose(target, agent.task.conditions[1].target, atol=1e-12)
    if "target_position" in sl:
        np.testing.assert_allclose(x[sl["target_position"]], agent.task.conditions[1].target[:2], atol=1e-12)
    assert agent.dX == sum(s.stop - s.start for s in sl.values())


@pytest.mark.parametrize("name", ["pr2_peg", "reacher3", "pointmass_obstacle"])
def test_point_velocities_are_time_derivatives_of_points(agent_of, name):
    agent = agent_of(name)
    x = _random_state(agent, np.random.default_rng(1))
    qpos, qvel = agent.data.qpos.copy(), agent.data.qvel.copy()
    eps = 1e-6
    plus, minus = qpos.copy(), qpos.copy()
    mujoco.mj_integratePos(agent.model, plus, qvel, eps)
    mujoco.mj_integratePos(agent.model, minus, qvel, -eps)
    fd = (_points(agent, plus) - _points(agent, minus)) / (2 * eps)
    np.testing.assert_allclose(x[agent.task.state_slices["ee_point_velocities"]], fd, atol=1e-6)


@pytest.mark.parametrize("name", ["pr2_peg", "reacher3"])
def test_ee_jacobian_matches_finite_differences(agent_of, name):
    agent = agent_of(name)
    rng = np.random.default_rng(2)
    s = agent.sample(zero_policy(agent, 0.01), 2, seed=4)
    J = s.extras["ee_point_jacobians"]
    assert J.shape == (1, agent.T, agent.task.ee_shape[0] * agent.task.ee_shape[1], agent.dX)
    sl = agent.task.state_slices
    ja = sl["joint_angles"]
    for t in rng.choice(agent.T, 3, replace=False):
        qpos = agent.model.qpos0.copy()
        qpos[agent.assembler.qpos_adr] = s.X[0, t, ja]
        agent.model.body_pos[agent.model.body(agent.task.config.target_body).id] = agent.task.conditions[2].target
        fd = np.zeros_like(J[0, t])
        for i, adr in enumerate(agent.assembler.qpos_adr):
            plus, minus = qpos.copy(), qpos.copy()
            plus[adr] += 1e-6
            minus[adr] -= 1e-6
            fd[:, ja.start + i] = (_points(agent, plus) - _points(agent, minus)) / 2e-6
        if "target_position" in sl:
            # ee points are relative to the target: moving the target by e moves them by -e
            fd[:, sl["target_position"]] = -np.eye(2)
        np.testing.assert_allclose(J[0, t], fd, atol=1e-6)


def test_blind_observation_is_joint_state_only(agent_of):
    agent = agent_of("pr2_peg_blind")
    s = agent.sample(zero_policy(agent, 0.01), 0, seed=5)
    assert s.dO == 14
    np.testing.assert_array_equal(s.obs, s.X[:, :, :14])
    assert s.obs_slices == {"joint_angles": slice(0, 7), "joint_velocities": slice(7, 14)}


def test_random_conditions_cover_the_region(agent_of):
    task = agent_of("pr2_peg").task
    rng = np.random.default_rng(6)
    targets = np.array([task.random_condition(rng).target for _ in range(2000)])
    region = task.config.conditions.target_region
    assert np.all(targets >= np.array(region.low) - 1e-12) and np.all(targets <= np.array(region.high) + 1e-12)
    # uniform on [a, a + 0.4]: mean at the centre, std 0.4 / sqrt(12)
    np.testing.assert_allclose(targets[:, :2].std(axis=0), 0.4 / np.sqrt(12), rtol=0.05)
    reacher = agent_of("reacher3").task
    r = np.array([np.linalg.norm(reacher.random_condition(rng).target[:2]) for _ in range(2000)])
    assert r.min() >= 0.1 and r.max() <= 0.38
    # uniform by area: P(r < r_mid) = (r_mid^2 - r_min^2) / (r_max^2 - r_min^2)
    r_mid = 0.24
    np.testing.assert_allclose(np.mean(r < r_mid), (r_mid**2 - 0.01) / (0.38**2 - 0.01), atol=0.03)
    assert isinstance(task.condition(0), Condition)
