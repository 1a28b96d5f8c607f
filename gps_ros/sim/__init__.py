"""MuJoCo task suite: models (MJCF, package data in models/), task configs, state assembly.

Rendering is offscreen; MUJOCO_GL defaults to egl (headless) unless already set, which
must happen before mujoco is first imported.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from gps_ros.sim.task import Condition, Task, load_task  # noqa: E402

__all__ = ["Condition", "Task", "load_task"]
