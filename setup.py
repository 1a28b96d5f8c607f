"""Pure-Python distribution of gps_ros: the algorithm library and the `gps-ros` command.

`pip install -e .` works without ROS 2. The ROS 2 package (interfaces, nodes, launch
files) is built by CMake/colcon from CMakeLists.txt; modules under gps_ros/ros import
rclpy lazily and say so when it is missing.
"""

from pathlib import Path

from setuptools import find_packages, setup


def _share_files(folder: str) -> list[tuple[str, list[str]]]:
    """config/ and launch/ go to <prefix>/share/gps_ros, where gps_ros.resources looks."""
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    by_dir: dict[str, list[str]] = {}
    for p in files:
        by_dir.setdefault(str(Path("share/gps_ros") / p.parent), []).append(str(p))
    return sorted(by_dir.items())

setup(
    name="gps_ros",
    version="0.1.0",
    description="Guided policy search for torque-controlled arms (MDGPS, reset-free, constrained, variational, BADMM)",
    python_requires=">=3.10",
    packages=find_packages(include=["gps_ros", "gps_ros.*"]),
    package_data={"gps_ros": ["ros/nodes.txt", "sim/models/*.xml"]},
    install_requires=[
        "numpy>=1.26",
        "scipy>=1.11",
        "pyyaml>=6",
        "mujoco>=3.2",
        "matplotlib>=3.8",
        "mcap>=1.1",
    ],
    data_files=_share_files("config") + _share_files("launch") + [("share/gps_ros", ["package.xml"])],
    extras_require={"torch": ["torch==2.13.0"], "test": ["pytest>=8"]},
    entry_points={"console_scripts": ["gps-ros = gps_ros.cli:main"]},
)
