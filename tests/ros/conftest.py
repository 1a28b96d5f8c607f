"""Each ROS test module runs in its own DDS domain.

Nodes that a failing module leaves behind (a learner still retrying its trials, say) then
cannot reach the next module's graph, whose topics have the same names.
"""

import itertools
import os

import pytest

_MODULE_INDEX = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def private_ros_domain():
    session_domain = int(os.environ["ROS_DOMAIN_ID"])
    os.environ["ROS_DOMAIN_ID"] = str((session_domain + next(_MODULE_INDEX)) % 100 + 1)
    yield
    os.environ["ROS_DOMAIN_ID"] = str(session_domain)
