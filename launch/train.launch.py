"""Train: ros2 launch gps_ros train.launch.py [sim:=true|false] [config:=FILE] [resume:=false] [namespace:=NS].

Starts sim (with sim:=true), controller, recorder, learner and status_monitor; the node
set and parameters come from gps_ros.ros.launch_table (shared with `gps-ros launch train`).
"""

from gps_ros.ros.launch_table import launch_description


def generate_launch_description():
    return launch_description("train")
