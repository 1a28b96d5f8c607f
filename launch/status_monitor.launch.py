"""Print the learner's progress: ros2 launch gps_ros status_monitor.launch.py [namespace:=NS]."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the gps_ros node graph"),
        Node(package="gps_ros", executable="status_monitor", namespace=LaunchConfiguration("namespace"), output="screen"),
    ])
