"""Bad task files and bad agent input are refused with errors naming the field."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

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
