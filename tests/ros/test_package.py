"""The ROS 2 package itself: manifest, built interfaces, what is installed where."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_package_xml_is_valid_format_3():
    from catkin_pkg.package import parse_package

    pkg = parse_package(str(REPO / "package.xml"))
    pkg.validate()
    assert pkg.package_format == 3
    assert pkg.name == "gps_ros"
    assert pkg.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]


def test_imports_come_from_the_built_install_not_the_source_tree():
    import gps_ros
    import gps_ros.msg

    installed = Path(gps_ros.__file__).resolve().parent
    assert installed != REPO / "gps_ros", "the source tree shadows the built package"
    assert (installed / "msg").is_dir() and (installed / "core").is_dir()
    assert Path(gps_ros.msg.__file__).resolve().is_relative_to(installed)


def test_every_interface_file_generated_a_python_type():
    import importlib

    for folder, module in (("msg", "gps_ros.msg"), ("srv", "gps_ros.srv"), ("action", "gps_ros.action")):
        mod = importlib.import_module(module)
        for path in (REPO / folder).iterdir():
            assert hasattr(mod, path.stem), f"{path.name} has no generated type in {module}"


def test_action_goal_result_feedback_fields():
    from gps_ros.action import RunTrial

    goal = RunTrial.Goal(trial_id=7, condition=2, horizon=100, dt=0.05)
    assert goal.policy_type == RunTrial.Goal.POLICY_LINEAR_GAUSSIAN
    result = RunTrial.Result()
    result.sample.trial_id = goal.trial_id
    assert result.sample.trial_id == 7
    assert RunTrial.Feedback(step=3, horizon=100).step == 3


def test_share_directory_has_launch_config_and_manifest():
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("gps_ros"))
    assert (share / "package.xml").is_file()
    assert (share / "launch").is_dir() and (share / "config").is_dir()


def test_node_executables_installed_for_ros2_run():
    from ament_index_python.packages import get_package_prefix

    from gps_ros.ros.node_table import node_executables

    lib = Path(get_package_prefix("gps_ros")) / "lib" / "gps_ros"
    table = node_executables()
    assert table, "no node executables declared"
    for name in table:
        exe = lib / name
        assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing or not executable"


def test_ros_modules_say_ros_is_needed_when_missing(monkeypatch):
    import builtins

    from gps_ros.ros import require_ros

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "rclpy_not_here":
            raise ImportError("No module named 'rclpy_not_here'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(RuntimeError, match="needs ROS 2"):
        require_ros("rclpy_not_here", "the test")
