import numpy as np
import pytest

import gps_ros.sim  # noqa: F401  (MUJOCO_GL=egl before mujoco loads)
from gps_ros.agents import MujocoAgent
from gps_ros.core.linear_gaussian import LinearGaussianPolicy

TASKS = ["pr2_peg", "pr2_peg_blind", "pr2_peg_3d", "reacher3", "pointmass_obstacle"]


def zero_policy(agent: MujocoAgent, scale: float = 1.0) -> LinearGaussianPolicy:
    """u = 0 + sqrt(scale) noise: zero torque with the mean action."""
    T, dU, dX = agent.T, agent.dU, agent.dX
    return LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(scale * np.eye(dU), (T, 1, 1)))


_agents: dict[str, MujocoAgent] = {}


@pytest.fixture
def agent_of():
    def get(name: str) -> MujocoAgent:
        if name not in _agents:
            _agents[name] = MujocoAgent(name)
        return _agents[name]

    return get
