"""Agents: where samples come from. ``MujocoAgent`` runs tasks in-process.

gps_ros.sim is imported first so that MUJOCO_GL defaults to egl before mujoco loads.
"""

import gps_ros.sim  # noqa: F401
from gps_ros.agents.base import Agent
from gps_ros.agents.evaluate import Evaluation, evaluate
from gps_ros.agents.mujoco_agent import MujocoAgent

__all__ = ["Agent", "Evaluation", "MujocoAgent", "evaluate"]
