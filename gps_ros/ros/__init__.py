"""The thin rclpy layer: nodes and message conversion. Everything here needs ROS 2.

Importing this package does not import rclpy; modules that need it call
:func:`require_ros` so a machine without ROS gets a clear message instead of an
ImportError deep in a stack trace.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ROS_MISSING = (
    "{what} needs ROS 2 (rclpy and the built gps_ros interfaces), which could not be imported: {err}. "
    "Run `make build` and use the environment of `make test`/`make train`, or source a ROS 2 "
    "workspace where gps_ros was built with colcon."
)


def require_ros(module: str = "rclpy", what: str = "this command") -> ModuleType:
    """Import ``module`` (rclpy or generated interfaces) or raise RuntimeError saying ROS 2 is needed."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise RuntimeError(ROS_MISSING.format(what=what, err=err)) from err
