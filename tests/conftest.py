"""Test-wide settings: DDS stays on this machine, and ROS tests need what `make build` installed."""

import os
import random

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# A private domain per test session keeps concurrent test runs on one machine apart.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("MUJOCO_GL", "egl")
