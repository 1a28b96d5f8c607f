"""Pure-Python distribution of gps_ros: the algorithm library and the `gps-ros` command.

`pip install -e .` works without ROS 2. The ROS 2 package (interfaces, nodes, launch
files) is built by CMake/colcon from CMakeLists.txt; modules under gps_ros/ros import
rclpy lazily and say so when it is missing.
"""

from setuptools import find_packages, setup

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
    extras_require={"torch": ["torch==2.13.0"], "test": ["pytest>=8"]},
    entry_points={"console_scripts": ["gps-ros = gps_ros.cli:main"]},
)
