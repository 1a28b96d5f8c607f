"""Success detection with the peg placed in and out of the hole, and through the agent."""

import numpy as np
import pytest

from gps_ros.agents import evaluate
from gps_ros.sim.placement import place_peg
from gps_ros.sim.task import Condition
from tests.sim.conftest import zero_policy

CENTRE = 4  # the middle of the 3x3 grid of hole positions


@pytest.mark.parametrize(
    "offset, inside",
    [((0, 0, 0), True), ((0, 0, 0.04), True), ((0, 0, 0.15), False), ((0.12, 0.0, 0.1), False)],
)
def test_placed_peg_success(agent_of, offset, inside):
    agent = agent_of("pr2_peg")
    agent.reset(CENTRE)
    assert place_peg(agent.task, agent.model, agent.data, np.array(offset, float)) < 1e-6
    x = agent.state()
    bottom = agent.data.site_xpos[agent.model.site("peg_bottom").id]
    hole = agent.data.site_xpos[agent.model.site("hole_bottom").id]
    distance = np.linalg.norm(bottom - hole)
    np.testing.assert_allclose(distance, np.linalg.norm(offset), atol=1e-6)
    np.testing.assert_allclose(agent.task.final_distance(x[None, None]), distance, atol=1e-12)
    assert agent.task.success(x[None, None])[0] == inside


def test_inserted_peg_stays_in_under_zero_torque(agent_of):
    agent = agent_of("pr2_peg")
    agent.reset(CENTRE)
    place_peg(agent.task, agent.model, agent.data, np.array([0.0, 0.0, 0.02]))
    inside = Condition(agent.task.conditions[CENTRE].target, agent.data.qpos[agent.assembler.qpos_adr].copy())
    agent.reset(CENTRE)
    place_peg(agent.task, agent.model, agent.data, np.array([0.0, 0.0, 0.2]))
    above = Condition(agent.task.conditions[CENTRE].target, agent.data.qpos[agent.assembler.qpos_adr].copy())
    result = evaluate(agent, zero_policy(agent), [inside, above])
    np.testing.assert_array_equal(result.success, [True, False])
    assert result.success_rate == 0.5
    np.testing.assert_allclose(result.final_distance, [0.02, 0.2], atol=1e-3)
