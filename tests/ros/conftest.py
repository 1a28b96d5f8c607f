"""Each ROS test module runs in its own DDS domain.

Nodes that a failing module leaves behind (a learner still retrying its trials, say) then
cannot reach the next module's graph, whose topics have the same names.
"""

import itertools
import os
import subprocess
import sys

import pytest

_MODULE_INDEX = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def private_ros_domain():
    session_domain = int(os.environ["ROS_DOMAIN_ID"])
    os.environ["ROS_DOMAIN_ID"] = str((session_domain + next(_MODULE_INDEX)) % 100 + 1)
    yield
    os.environ["ROS_DOMAIN_ID"] = str(session_domain)


@pytest.fixture()
def start_node(tmp_path):
    """start_node(name, *params, files=()) starts `gps-ros node NAME` in its own process (params as
    ``name:=value``, files from config/nodes), its output in <tmp_path>/<name>.log; every node
    started is stopped (SIGINT, then kill) when the test ends."""
    from gps_ros.resources import config_path

    started = []

    def start(name, *params, files=()):
        args = [sys.executable, "-m", "gps_ros.cli", "node", name, "--ros-args"]
        for f in files:
            args += ["--params-file", str(config_path("nodes", f))]
        for p in params:
            args += ["-p", p]
        with open(tmp_path / f"{name}.log", "a") as log:
            started.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True))
        return started[-1]

    yield start
    from gps_ros.ros.launch_table import stop_process

    for proc in started:
        stop_process(proc)
