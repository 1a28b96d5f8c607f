"""Test-wide settings: DDS stays on this machine, and ROS tests need what `make build` installed."""

import os
import random

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# A private domain per test session keeps concurrent test runs on one machine apart.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """One torch thread, as the package's S-step and benchmarks use (gps_ros.policies.threads):
    the networks are tiny, and intra-op threads only contend with other processes on a small
    machine; S-step fits are then also repeatable."""
    from gps_ros.policies.threads import torch_threads

    with torch_threads(1):
        yield
