"""Bad task files and bad agent input are refused with errors naming the field."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.sim import load_task
from gps_ros.sim.config import parse_task_config
from gps_ros.sim.task import TASKS_DIR, Condition, Task
from tests.sim.conftest import TASKS, zero_policy

RAW = yaml.safe_load((TASKS_DIR / "pr2_peg.yaml").read_text())


def _with(**changes):
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return raw


@pytest.mark.parametrize("name", TASKS)
def test_every_task_loads_with_its_cost(name):
    task = load_task(name)
    assert task.cost() is not None
    assert len(task.conditions) >= 1


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"state": [{"name": "q", "type": "joint_torques"}]}, "task.state[0].type"),
        ({"obs": ["joint_angles", "camera"]}, "task.obs"),
        ({"initial_qpos": [0.0, 0.0]}, "task.initial_qpos"),
        ({"dt": -0.05}, "task.dt"),
        ({"conditions": {"fixed_targets": "corners"}}, "task.conditions.fixed_targets"),
        ({"conditions": {"region": {"type": "sphere"}, "fixed_targets": [[0, 0, 0]]}}, "task.conditions.region.type"),
        ({"success": {"point": 0, "threshold": 0.0}}, "task.success"),
        ({"colour": "red"}, "task: unknown keys"),
        ({"T": 50.7}, "task.T: expected an integer >= 1, got 50.7"),
        ({"substeps": 2.0}, "task.substeps: expected an integer >= 1, got 2.0"),
        ({"T": True}, "task.T: expected an integer"),
        ({"state": [{"name": "q", "type": "joint_angles", "axes": 1}]}, "task.state[0].axes"),
        ({"state": [{"name": "q", "type": "joint_angles", "axes": "xy"}]}, "task.state[0].axes"),
        ({"state": [{"name": "q", "type": "joint_angles", "axes": [0.5]}]}, "task.state[0].axes"),
        (
            {"conditions": {"region": {"type": "annulus", "center": [0, 0, 0], "r_min": "a", "r_max": 1.0}}},
            "task.conditions.region.r_min: expected a finite number >= 0, got 'a'",
        ),
        ({"conditions": {"fixed_targets": {"circle": 3}}}, "task.conditions.fixed_targets.circle: expected a mapping"),
        (
            {"conditions": {"fixed_targets": {"circle": {"center": [0, 0, 0], "radius": 0.1, "n": 2.5}}}},
            "task.conditions.fixed_targets.circle.n: expected an integer >= 1",
        ),
        ({"success": {"threshold": "0.05"}}, "task.success.threshold: expected a finite number > 0, got '0.05'"),
        ({"success": {"point": 1.5}}, "task.success.point: expected an integer >= 0"),
        ({"noise": {"smooth_sigma": "wide"}}, "task.noise.smooth_sigma: expected a finite number >= 0"),
        ({"noise": {"renorm": "yes"}}, "task.noise.renorm: expected true or false"),
        ({"render": {"width": 64.5}}, "task.render.width: expected an integer >= 1, got 64.5"),
        ({"render": {"height": "64"}}, "task.render.height: expected an integer >= 1"),
        ({"render": {"camera": 3}}, "task.render.camera: expected a non-empty string"),
        ({"render": {"depth": 3}}, "task.render: unknown keys"),
    ],
)
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        parse_task_config(_with(**changes))


def test_model_mismatches_are_refused():
    task = load_task("pr2_peg")
    with pytest.raises(ValueError, match="task.substeps"):
        Task(parse_task_config(_with(substeps=7)), task.model_path)
    with pytest.raises(ValueError, match="task.joints"):
        Task(parse_task_config(_with(joints=list(reversed(RAW["joints"])))), task.model_path)
    with pytest.raises(ValueError, match="task.state\\[\\*\\].sites"):
        state = copy.deepcopy(RAW["state"])
        state[2]["sites"] = ["peg_top", "nowhere"]
        Task(parse_task_config(_with(state=state)), task.model_path)
    with pytest.raises(ValueError, match="name_or_path"):
        load_task("no_such_task")
    assert isinstance(load_task(Path(TASKS_DIR / "reacher3.yaml")), Task)


def test_bad_sample_input_is_refused(agent_of):
    agent = agent_of("reacher3")
    policy = zero_policy(agent)
    with pytest.raises(ValueError, match=r"noise: expected shape \[50, 3\]"):
        agent.sample(policy, 0, noise=np.zeros((50, 2)))
    with pytest.raises(ValueError, match=r"condition: expected a Condition or an index in \[0, 8\)"):
        agent.sample(policy, 8)
    with pytest.raises(ValueError, match=r"condition.qpos: expected shape \[3\]"):
        agent.sample(policy, Condition(np.zeros(3), np.zeros(7)))
    with pytest.raises(ValueError, match="policies: expected one policy or 2"):
        agent.sample_many([policy], [0, 1])
    with pytest.raises(ValueError, match="policy: expected a Policy"):
        agent.sample(object(), 0)


@pytest.mark.parametrize("dims", [(-1, 0, 0), (0, 1, 0), (0, 0, 1)])
def test_policy_dimension_mismatch_is_refused_before_reset(agent_of, dims):
    agent = agent_of("reacher3")
    dT, dX, dU = dims
    T, dX, dU = agent.T + dT, agent.dX + dX, agent.dU + dU
    bad = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    agent.reset(1)
    qpos, target = agent.data.qpos.copy(), agent.model.body_pos.copy()
    expected = rf"expected T={agent.T}, dX={agent.dX}, dU={agent.dU}, got T={T}, dX={dX}, dU={dU}"
    with pytest.raises(ValueError, match=r"^policy: " + expected):
        agent.sample(bad, 0)
    with pytest.raises(ValueError, match=r"^policies\[1\]: " + expected):
        agent.sample_many([zero_policy(agent), bad], [0, 0])
    with pytest.raises(ValueError, match=r"^policies: " + expected):
        agent.sample_many(bad, [0, 0])
    np.testing.assert_array_equal(agent.data.qpos, qpos)
    np.testing.assert_array_equal(agent.model.body_pos, target)
