"""The table of node executables (gps_ros/ros/nodes.txt), shared with CMake's installer."""

from __future__ import annotations

import re
from importlib import resources

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([A-Za-z0-9_.]+):([A-Za-z0-9_]+)\s*$")


def node_executables() -> dict[str, tuple[str, str]]:
    """executable name -> (module, function), in the order of nodes.txt."""
    table: dict[str, tuple[str, str]] = {}
    text = resources.files("gps_ros.ros").joinpath("nodes.txt").read_text()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"nodes.txt line {number}: expected 'name = module:function', got {line!r}")
        table[match.group(1)] = (match.group(2), match.group(3))
    return table
