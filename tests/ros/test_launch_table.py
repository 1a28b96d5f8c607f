"""The launch table: launch files and `gps-ros launch` start the same nodes with the same parameters."""

import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class _Action:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


def _stub_launch_modules(monkeypatch):
    """Minimal `launch` / `launch_ros` stand-ins recording what the launch file builds."""
    kinds = {}
    for name in ("LaunchDescription", "DeclareLaunchArgument", "LogInfo", "OpaqueFunction", "Node", "Shutdown"):
        kinds[name] = type(name, (_Action,), {})
    modules = {
        "launch": {"LaunchDescription": kinds["LaunchDescription"]},
        "launch.actions": {n: kinds[n] for n in ("DeclareLaunchArgument", "LogInfo", "OpaqueFunction", "Shutdown")},
        "launch.substitutions": {"LaunchConfiguration": _LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": kinds["Node"]},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    return kinds


def _launch_file_nodes(monkeypatch, graph, values):
    """Import launch/<graph>.launch.py with stub modules and evaluate it for ``values``."""
    kinds = _stub_launch_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location(f"{graph}_launch", REPO / "launch" / f"{graph}.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    (entities,) = description.args
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if isinstance(e, kinds["DeclareLaunchArgument"])}
    (opaque,) = [e for e in entities if isinstance(e, kinds["OpaqueFunction"])]
    context = {**declared, **values}
    actions = opaque.kwargs["function"](context)
    return declared, actions, kinds


@pytest.mark.parametrize("graph,values", [
    ("train", {}),
    ("train", {"sim": "false", "config": str(REPO / "config" / "train" / "mdgps_peg.yaml"), "resume": "true",
               "namespace": "arm1"}),
    ("run_policy", {"policy": "/tmp/p.pt"}), ("run_policy", {"sim": "false", "namespace": "arm2"}),
])
def test_launch_file_starts_exactly_the_table_nodes(monkeypatch, graph, values):
    from gps_ros.ros import launch_table

    declared, actions, kinds = _launch_file_nodes(monkeypatch, graph, values)
    assert declared == {name: a.default for name, a in launch_table.graph_arguments(graph).items()}
    table = launch_table.resolve(graph, values)
    missing = launch_table.unavailable(table)
    started = [a.kwargs for a in actions if isinstance(a, kinds["Node"])]
    assert [(s["executable"], s["name"], s["namespace"], s["parameters"]) for s in started] == [
        (n.executable, n.name, n.namespace, [*n.params_files, n.parameters]) for n in table if n.executable not in missing]
    assert all(s["package"] == "gps_ros" for s in started)
    # a required node's exit shuts the launch down, like run_nodes does
    assert [isinstance(s["on_exit"], kinds["Shutdown"]) for s in started] == [
        n.required for n in table if n.executable not in missing]
    logged = [a.kwargs["msg"] for a in actions if isinstance(a, kinds["LogInfo"])]
    assert len(logged) == len(missing) and all("not available yet" in m for m in logged)


def test_table_has_the_node_sets_of_the_design():
    from gps_ros.ros.launch_table import resolve

    assert [n.executable for n in resolve("train", {"sim": "true"})] == ["sim", "controller", "recorder", "learner", "status_monitor"]
    assert [n.executable for n in resolve("train", {"sim": "false"})] == ["controller", "recorder", "learner", "status_monitor"]
    assert [n.executable for n in resolve("run_policy", {})] == ["sim", "controller", "policy_runner"]


def test_arguments_become_parameters_and_params_files_are_used(tmp_path):
    from gps_ros.ros.launch_table import resolve

    (tmp_path / "nodes").mkdir()
    for name in ("recorder", "controller", "controller_sim"):
        (tmp_path / "nodes" / f"{name}.yaml").write_text("/**:\n  ros__parameters:\n    x: 1.0\n")
    config = tmp_path / "c.yaml"
    config.write_text("task: pr2_peg\noutput_dir: runs/peg\n")
    nodes = {n.executable: n for n in resolve("train", {"config": str(config), "resume": "TRUE", "namespace": "arm"},
                                              tmp_path)}
    assert nodes["learner"].parameters == {"use_sim_time": True, "config": str(config), "resume": True,
                                           "samples_dir": "runs/peg/samples"}
    assert nodes["sim"].parameters == {"task": "pr2_peg"}, "the sim publishes /clock: it does not run on sim time"
    assert nodes["controller"].parameters == {"use_sim_time": True, "task": "pr2_peg"}
    assert nodes["recorder"].parameters == {"use_sim_time": True, "output_dir": "runs/peg/samples"}
    assert [n.executable for n in nodes.values() if n.required] == ["learner"]
    assert nodes["recorder"].params_files == (str(tmp_path / "nodes" / "recorder.yaml"),)
    assert nodes["controller"].params_files == (str(tmp_path / "nodes" / "controller.yaml"),
                                                str(tmp_path / "nodes" / "controller_sim.yaml"))
    assert nodes["learner"].params_files == ()
    hardware = {n.executable: n for n in resolve("train", {"sim": "false"}, tmp_path)}
    assert hardware["controller"].params_files == (str(tmp_path / "nodes" / "controller.yaml"),)
    assert hardware["controller"].parameters == {"use_sim_time": False}
    assert {n.namespace for n in nodes.values()} == {"arm"}


def test_bad_launch_arguments_raise_naming_them(tmp_path):
    from gps_ros.ros.launch_table import parse_assignments, resolve

    with pytest.raises(ValueError, match=r"config: expected a YAML file, got 'nowhere.yaml' \(not found\)"):
        resolve("train", {"config": "nowhere.yaml"})
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="config: expected a YAML mapping in .*list.yaml, got list"):
        resolve("train", {"config": str(tmp_path / "list.yaml")})

    with pytest.raises(ValueError, match=r"graph: expected one of \['run_policy', 'train'\], got 'fly'"):
        resolve("fly", {})
    with pytest.raises(ValueError, match=r"unknown \['resume'\]"):
        resolve("run_policy", {"resume": "true"})
    with pytest.raises(ValueError, match="sim: expected true or false, got 'yes'"):
        resolve("train", {"sim": "yes"})
    with pytest.raises(ValueError, match="expected name:=value, got 'sim=true'"):
        parse_assignments(["sim=true"])


def test_node_command_quotes_values_as_yaml_scalars():
    from gps_ros.ros.launch_table import NodeLaunch, node_command

    cmd = node_command(NodeLaunch("learner", "learner", "arm", ("a.yaml",),
                                  {"use_sim_time": True, "config": "true", "resume": False, "empty": "", "path": "x/y.yaml"}), "py")
    assert cmd == ["py", "-m", "gps_ros.cli", "node", "learner", "--ros-args", "-r", "__node:=learner", "-r", "__ns:=/arm",
                   "--params-file", "a.yaml", "-p", "use_sim_time:=true", "-p", 'config:="true"', "-p", "resume:=false",
                   "-p", 'empty:=""', "-p", "path:=x/y.yaml"]


FAKE_NODE = """#!/bin/sh
# stands in for `python -m gps_ros.cli node NAME ...`: the learner exits with $LEARNER_EXIT after a
# moment; every other node runs until SIGINT, then exits 0
if [ "$4" = learner ]; then sleep 0.5; exit "$LEARNER_EXIT"; fi
trap 'exit 0' INT
while true; do sleep 0.05; done
"""


@pytest.mark.parametrize("learner_exit,expected", [(0, 0), (3, 1)])
def test_a_required_node_ending_stops_the_graph(tmp_path, monkeypatch, learner_exit, expected):
    from gps_ros.ros.launch_table import resolve, run_nodes

    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_NODE)
    fake.chmod(0o755)
    monkeypatch.setenv("LEARNER_EXIT", str(learner_exit))
    nodes = resolve("train", {"sim": "true"})
    # run_nodes returns only once every node has exited: the others got SIGINT when the learner ended
    assert run_nodes(nodes, shutdown_timeout=30.0, python=str(fake)) == expected


def _cli(*args):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gps_ros.cli", "launch", *args], capture_output=True, text=True, env=env)


def test_dry_run_prints_the_commands_and_names_missing_nodes(tmp_path):
    from gps_ros.ros.launch_table import node_command, resolve, unavailable

    config = tmp_path / "cfg.yaml"
    config.write_text("task: reacher3\n")
    out = _cli("train", "sim:=true", f"config:={config}", "--dry-run")
    assert out.returncode == 0, out.stderr
    table = resolve("train", {"sim": "true", "config": str(config)})
    missing = unavailable(table)
    printed = [shlex.split(line) for line in out.stdout.splitlines()]
    assert printed == [node_command(n) for n in table if n.executable not in missing]
    assert "recorder" in [c[4] for c in printed]
    for name in missing:
        assert f"node {name} is not available yet" in out.stderr


def test_launch_refuses_when_a_node_cannot_start_unless_told_to_skip(monkeypatch, capsys):
    from gps_ros import cli
    from gps_ros.ros import launch_table

    why = "not available yet (module gps_ros.ros.recorder_node not found)"
    monkeypatch.setattr(launch_table, "unavailable", lambda nodes: {"recorder": why})
    started = []
    monkeypatch.setattr(launch_table, "run_nodes", lambda nodes, timeout: started.append(nodes) or 0)
    with pytest.raises(SystemExit, match="1 node\\(s\\) of 'train' cannot start; --skip-missing starts the others"):
        cli.main(["launch", "train"])
    assert f"node recorder is {why}" in capsys.readouterr().err
    assert not started
    assert cli.main(["launch", "train", "--skip-missing"]) == 0
    expected = [n.executable for n in launch_table.resolve("train", {}) if n.executable != "recorder"]
    assert [n.executable for n in started[0]] == expected


def test_launch_starts_the_available_nodes_and_forwards_sigint(tmp_path):
    import rclpy

    from gps_ros.ros.launch_table import resolve, unavailable

    table = resolve("train", {"sim": "false", "namespace": "launch_test"})
    expected = [n.name for n in table if n.executable not in unavailable(table)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gps_ros.cli", "launch", "train", "sim:=false", "namespace:=launch_test",
                             "--skip-missing"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    lines = [proc.stdout.readline() for _ in expected]
    assert lines == [f"[launch] started {name} (pid {line.split('pid ')[-1]}" for name, line in zip(expected, lines)], lines
    # SIGINT only once every node is up (a node interrupted while starting may exit with an error)
    rclpy.init()
    try:
        observer = rclpy.create_node("launch_observer")
        up: set = set()
        while not up >= set(expected) and proc.poll() is None:
            rclpy.spin_once(observer, timeout_sec=0.1)
            up = {name for name, ns in observer.get_node_names_and_namespaces() if ns == "/launch_test"}
        observer.destroy_node()
    finally:
        rclpy.try_shutdown()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate()
    codes = {line.split()[1]: int(line.split()[-1]) for line in out.splitlines() if " exited with code " in line}
    assert set(codes) == set(expected), "every started node's exit is reported"
    assert codes["recorder"] == 0 and codes["status_monitor"] == 0
    assert proc.returncode == (0 if not any(codes.values()) else 1), err
    assert (tmp_path / "runs" / "samples").is_dir(), "the recorder ran with its params file (output_dir runs/samples)"


def test_node_interrupted_while_starting_exits_cleanly():
    # The launcher's SIGINT can reach a node whose name is on the graph but whose __init__ is still running.
    import rclpy

    from gps_ros.ros.node_main import spin_node_main

    built = []

    def make_node():
        built.append(rclpy.create_node("half_built"))
        raise KeyboardInterrupt

    try:
        code = spin_node_main(make_node, ["half_built"])
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        pytest.fail("Ctrl-C while the node was being built escaped spin_node_main")
    assert code == 0
    assert len(built) == 1 and not rclpy.ok(), "rclpy is shut down after the interrupted start"
