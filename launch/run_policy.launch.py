"""Run a trained policy: ros2 launch gps_ros run_policy.launch.py policy:=FILE [sim:=true|false] [config:=FILE] [namespace:=NS].

Starts sim (with sim:=true), controller and the policy runner; the node set and parameters
come from gps_ros.ros.launch_table (shared with `gps-ros launch run_policy`).
"""

from gps_ros.ros.launch_table import launch_description


def generate_launch_description():
    return launch_description("run_policy")
