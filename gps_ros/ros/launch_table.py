"""Which nodes a node graph starts, with which parameters: the one source of truth for
``ros2 launch gps_ros train.launch.py`` / ``run_policy.launch.py`` and for
``gps-ros launch train|run_policy`` (the same node set as subprocesses, for machines
without ``launch``/``ros2``).

Each node gets its parameter file ``config/nodes/<executable>.yaml`` and, with
``sim:=true``, ``config/nodes/<executable>_sim.yaml`` loaded after it (each when it exists),
``use_sim_time`` (true with ``sim:=true``, except on the sim node, which publishes
/clock), and the parameters its launch arguments set (``config``, ``resume``, ``policy``).
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gps_ros.ros.node_table import node_executables


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str


ARGUMENTS = {a.name: a for a in (
    LaunchArgument("sim", "true", "true: MuJoCo sim node (lock-step, /clock); false: hardware behind ros2_control"),
    LaunchArgument("config", "", "training or task config YAML for the learner / policy runner"),
    LaunchArgument("resume", "false", "learner: resume from the last checkpoint and the recorded samples"),
    LaunchArgument("policy", "", "policy file (gps_ros.policies.serialization) run by the policy runner"),
    LaunchArgument("namespace", "", "namespace of the whole node graph"),
)}
_BOOLEAN = ("sim", "resume")


@dataclass(frozen=True)
class NodeEntry:
    """executable: name in nodes.txt (also the node name); only_in_sim: started with sim:=true
    only; arguments: launch argument -> the node parameter it sets."""

    executable: str
    only_in_sim: bool = False
    arguments: Mapping[str, str] = field(default_factory=dict)


GRAPHS: dict[str, tuple[NodeEntry, ...]] = {
    "train": (
        NodeEntry("sim", only_in_sim=True),
        NodeEntry("controller"),
        NodeEntry("recorder"),
        NodeEntry("learner", arguments={"config": "config", "resume": "resume"}),
        NodeEntry("status_monitor"),
    ),
    "run_policy": (
        NodeEntry("sim", only_in_sim=True),
        NodeEntry("controller"),
        NodeEntry("policy_runner", arguments={"config": "config", "policy": "policy_file"}),
    ),
}
GRAPH_ARGUMENTS = {"train": ("sim", "config", "resume", "namespace"), "run_policy": ("sim", "config", "policy", "namespace")}


@dataclass(frozen=True)
class NodeLaunch:
    """One node to start: params_files are applied in order, then parameters."""

    name: str
    executable: str
    namespace: str
    params_files: tuple[str, ...]
    parameters: dict[str, object]


def graph_arguments(graph: str) -> dict[str, LaunchArgument]:
    _check_graph(graph)
    return {name: ARGUMENTS[name] for name in GRAPH_ARGUMENTS[graph]}


def _check_graph(graph: str) -> None:
    if graph not in GRAPHS:
        raise ValueError(f"graph: expected one of {sorted(GRAPHS)}, got {graph!r}")


def config_dir() -> Path:
    """The package's config/ folder: the installed share directory, else the source tree's."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return Path(get_package_share_directory("gps_ros")) / "config"
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / "config"


def resolve(graph: str, values: Mapping[str, str], config: Path | None = None) -> list[NodeLaunch]:
    """The nodes of ``graph`` for launch argument ``values`` (missing ones take their defaults)."""
    args = graph_arguments(graph)
    unknown = sorted(set(values) - set(args))
    if unknown:
        raise ValueError(f"launch arguments: expected some of {sorted(args)}, got unknown {unknown}")
    merged = {name: str(values.get(name, a.default)) for name, a in args.items()}
    for name in _BOOLEAN:
        if name in merged and merged[name].lower() not in ("true", "false"):
            raise ValueError(f"{name}: expected true or false, got {merged[name]!r}")
    sim = merged["sim"].lower() == "true"
    folder = config_dir() if config is None else Path(config)
    nodes = []
    for entry in GRAPHS[graph]:
        if entry.only_in_sim and not sim:
            continue
        suffixes = ("", "_sim") if sim else ("",)
        params_files = [folder / "nodes" / f"{entry.executable}{suffix}.yaml" for suffix in suffixes]
        parameters: dict[str, object] = {} if entry.only_in_sim else {"use_sim_time": sim}
        for arg, param in entry.arguments.items():
            if merged[arg] != "":
                parameters[param] = merged[arg].lower() == "true" if arg in _BOOLEAN else merged[arg]
        nodes.append(NodeLaunch(entry.executable, entry.executable, merged["namespace"],
                                tuple(str(f) for f in params_files if f.is_file()), parameters))
    return nodes


def unavailable(nodes: Sequence[NodeLaunch]) -> dict[str, str]:
    """executable -> why it cannot start (not in nodes.txt yet, or its module is missing)."""
    table = node_executables()
    missing = {}
    for node in nodes:
        if node.executable not in table:
            missing[node.executable] = "not available yet (no entry in gps_ros/ros/nodes.txt)"
        elif importlib.util.find_spec(table[node.executable][0]) is None:
            missing[node.executable] = f"not available yet (module {table[node.executable][0]} not found)"
    return missing


def _ros_value(value: object) -> str:
    """A parameter value as a ``-p name:=value`` YAML scalar (strings stay strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    import yaml

    text = str(value)
    return text if text and yaml.safe_load(text) == text else json.dumps(text)


def node_command(node: NodeLaunch, python: str = sys.executable) -> list[str]:
    """The subprocess command that starts ``node`` without ros2 run."""
    cmd = [python, "-m", "gps_ros.cli", "node", node.executable, "--ros-args", "-r", f"__node:={node.name}"]
    if node.namespace:
        cmd += ["-r", f"__ns:=/{node.namespace.strip('/')}"]
    for path in node.params_files:
        cmd += ["--params-file", path]
    for name, value in node.parameters.items():
        cmd += ["-p", f"{name}:={_ros_value(value)}"]
    return cmd


def launch_description(graph: str):
    """The ROS 2 LaunchDescription of ``graph`` (what launch/<graph>.launch.py returns)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in graph_arguments(graph)}
        resolved = resolve(graph, values)
        missing = unavailable(resolved)
        return [
            LogInfo(msg=f"gps_ros: node {n.executable} is {missing[n.executable]}; not started") if n.executable in missing
            else Node(package="gps_ros", executable=n.executable, name=n.name, namespace=n.namespace,
                      parameters=[*n.params_files, n.parameters], output="screen")
            for n in resolved
        ]

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                for a in graph_arguments(graph).values()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])


def run_nodes(nodes: Sequence[NodeLaunch], shutdown_timeout: float = 10.0, python: str = sys.executable) -> int:
    """Start ``nodes`` as subprocesses; on SIGINT/SIGTERM forward SIGINT to each, and kill
    those still running ``shutdown_timeout`` s later. Reports each exit; returns 0 when
    every node exited cleanly (code 0, or by the forwarded SIGINT), else 1."""
    stop = []
    handlers = {sig: signal.signal(sig, lambda *_: stop.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen] = {}
    codes: dict[str, int] = {}
    try:
        for node in nodes:
            # own session: a terminal's Ctrl-C reaches only this launcher, which forwards it once
            procs[node.name] = subprocess.Popen(node_command(node, python), start_new_session=True)
            print(f"[launch] started {node.name} (pid {procs[node.name].pid})", flush=True)
        forwarded_at = None
        while len(codes) < len(procs):
            if stop and forwarded_at is None:
                forwarded_at = time.monotonic()
                for name, proc in procs.items():
                    if name not in codes:
                        proc.send_signal(signal.SIGINT)
            if forwarded_at is not None and time.monotonic() - forwarded_at > shutdown_timeout:
                for name, proc in procs.items():
                    if name not in codes:
                        print(f"[launch] {name} still running {shutdown_timeout:g} s after SIGINT: killing it", flush=True)
                        proc.kill()
            for name, proc in procs.items():
                if name not in codes and proc.poll() is not None:
                    codes[name] = proc.returncode
                    print(f"[launch] {name} exited with code {proc.returncode}", flush=True)
            time.sleep(0.05)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    clean = (0, -signal.SIGINT, 128 + signal.SIGINT) if stop else (0,)
    return 0 if all(code in clean for code in codes.values()) else 1


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """['sim:=true', 'config:=x.yaml'] -> {'sim': 'true', 'config': 'x.yaml'}."""
    values = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"launch arguments: expected name:=value, got {item!r}")
        values[name] = value
    return values
