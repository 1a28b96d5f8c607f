"""gps_ros: guided policy search for torque-controlled arms, in MuJoCo and on ROS 2."""

__version__ = "0.1.0"
