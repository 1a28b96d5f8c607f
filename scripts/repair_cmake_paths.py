"""Rewrite the build-machine paths that the ROS 2 pip wheels hard-code in their CMake files.

The wheels were built under /opt/python/cp311-cp311; their exported ``*.cmake`` files name
that interpreter's include directory and numpy's include directory. Interface generation
against the wheels needs them to point at this interpreter's. Idempotent.
Usage: python scripts/repair_cmake_paths.py VENV_DIR
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import numpy

WHEEL_PYTHON_INCLUDE = "/opt/python/cp311-cp311/include/python3.11"
WHEEL_NUMPY_INCLUDE = "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"


def repair(venv: Path) -> int:
    replacements = {
        WHEEL_NUMPY_INCLUDE: numpy.get_include(),
        WHEEL_PYTHON_INCLUDE: sysconfig.get_paths()["include"],
    }
    changed = 0
    for path in (venv / "share").rglob("*.cmake"):
        text = path.read_text()
        new = text
        for old, replacement in replacements.items():
            new = new.replace(old, replacement)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: repair_cmake_paths.py VENV_DIR")
    print(f"repaired {repair(Path(sys.argv[1]))} CMake files")
