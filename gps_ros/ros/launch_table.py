"""Which nodes a node graph starts, with which parameters: the one source of truth for
``ros2 launch gps_ros train.launch.py`` / ``run_policy.launch.py`` and for
``gps-ros launch train|run_policy`` (the same node set as subprocesses, for machines
without ``launch``/``ros2``).

Each node gets its parameter file ``config/nodes/<executable>.yaml`` and, with
``sim:=true``, ``config/nodes/<executable>_sim.yaml`` loaded after it (each when it exists),
``use_sim_time`` (true with ``sim:=true``, except on the sim node, which publishes
/clock), the parameters its launch arguments set (``config``, ``resume``, ``policy``), and
those the config file implies: its ``task`` for the sim and the controller (they must
simulate and model the arm the learner trains on), and ``<output_dir>/samples`` as the
recorder's output folder and the learner's samples_dir (each run keeps its own trials).
A required node (the learner, the policy runner) ends the whole graph when it exits,
like launch's ``on_exit=Shutdown()``.
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
    only; arguments: launch argument -> the node parameter it sets; from_config: key of
    ``config_values`` -> the node parameter it sets; required: its exit ends the graph."""

    executable: str
    only_in_sim: bool = False
    arguments: Mapping[str, str] = field(default_factory=dict)
    from_config: Mapping[str, str] = field(default_factory=dict)
    required: bool = False


GRAPHS: dict[str, tuple[NodeEntry, ...]] = {
    "train": (
        NodeEntry("sim", only_in_sim=True, from_config={"task": "task"}),
        NodeEntry("controller", from_config={"task": "task"}),
        NodeEntry("recorder", from_config={"samples_dir": "output_dir"}),
        NodeEntry("learner", arguments={"config": "config", "resume": "resume"},
                  from_config={"samples_dir": "samples_dir"}, required=True),
        NodeEntry("status_monitor"),
    ),
    "run_policy": (
        NodeEntry("sim", only_in_sim=True, from_config={"task": "task"}),
        NodeEntry("controller", from_config={"task": "task"}),
        NodeEntry("policy_runner", arguments={"config": "config", "policy": "policy_file"}, from_config={"task": "task"},
                  required=True),
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
    required: bool = False


def config_values(config: str) -> dict[str, str]:
    """What a training (or task) config implies for the other nodes: ``task`` and, with an
    ``output_dir``, ``samples_dir`` = <output_dir>/samples. Empty for no config."""
    if not config:
        return {}
    import yaml

    path = Path(config)
    if not path.is_file():
        raise ValueError(f"config: expected a YAML file, got {config!r} (not found)")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"config: expected a YAML mapping in {config}, got {type(raw).__name__}")
    values = {}
    if "task" in raw:
        values["task"] = str(raw["task"])
    if "output_dir" in raw:
        values["samples_dir"] = str(Path(str(raw["output_dir"])) / "samples")
    return values


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
    implied = config_values(merged.get("config", ""))
    folder = config_dir() if config is None else Path(config)
    nodes = []
    for entry in GRAPHS[graph]:
        if entry.only_in_sim and not sim:
            continue
        suffixes = ("", "_sim") if sim else ("",)
        params_files = [folder / "nodes" / f"{entry.executable}{suffix}.yaml" for suffix in suffixes]
        parameters: dict[str, object] = {} if entry.only_in_sim else {"use_sim_time": sim}
        for key, param in entry.from_config.items():
            if key in implied:
                parameters[param] = implied[key]
        for arg, param in entry.arguments.items():
            if merged[arg] != "":
                parameters[param] = merged[arg].lower() == "true" if arg in _BOOLEAN else merged[arg]
        nodes.append(NodeLaunch(entry.executable, entry.executable, merged["namespace"],
                                tuple(str(f) for f in params_files if f.is_file()), parameters, entry.required))
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
    from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in graph_arguments(graph)}
        resolved = resolve(graph, values)
        missing = unavailable(resolved)
        return [
            LogInfo(msg=f"gps_ros: node {n.executable} is {missing[n.executable]}; not started") if n.executable in missing
            else Node(package="gps_ros", executable=n.executable, name=n.name, namespace=n.namespace,
                      parameters=[*n.params_files, n.parameters], output="screen",
                      on_exit=Shutdown(reason=f"{n.name} exited") if n.required else None)
            for n in resolved
        ]

    declared = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
                for a in graph_arguments(graph).values()]
    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT (a node's clean shutdown), then kill if it is still running ``timeout`` s later;
    returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def run_nodes(nodes: Sequence[NodeLaunch], shutdown_timeout: float = 10.0, python: str = sys.executable) -> int:
    """Start ``nodes`` as subprocesses; on SIGINT/SIGTERM, or when a required node exits,
    forward SIGINT to each, and kill those still running ``shutdown_timeout`` s later.
    Reports each exit; returns 0 when every node exited cleanly (code 0, or by the
    forwarded SIGINT, except a required node, which must exit 0 by itself), else 1."""
    signalled: list[int] = []
    handlers = {sig: signal.signal(sig, lambda sig, _: signalled.append(sig)) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen] = {}
    codes: dict[str, int] = {}
    required_exited = False
    try:
        for node in nodes:
            # own session: a terminal's Ctrl-C reaches only this launcher, which forwards it once
            procs[node.name] = subprocess.Popen(node_command(node, python), start_new_session=True)
            print(f"[launch] started {node.name} (pid {procs[node.name].pid})", flush=True)
        forwarded_at, killed = None, False
        while len(codes) < len(procs):
            if (signalled or required_exited) and forwarded_at is None:
                forwarded_at = time.monotonic()
                for name, proc in procs.items():
                    if name not in codes:
                        proc.send_signal(signal.SIGINT)
            if forwarded_at is not None and not killed and time.monotonic() - forwarded_at > shutdown_timeout:
                killed = True
                for name, proc in procs.items():
                    if name not in codes:
                        print(f"[launch] {name} still running {shutdown_timeout:g} s after SIGINT: killing it", flush=True)
                        proc.kill()
            for node in nodes:
                proc = procs[node.name]
                if node.name not in codes and proc.poll() is not None:
                    codes[node.name] = proc.returncode
                    print(f"[launch] {node.name} exited with code {proc.returncode}", flush=True)
                    if node.required and not (signalled or required_exited):
                        print(f"[launch] {node.name} is required: stopping the graph", flush=True)
                        required_exited = True
            time.sleep(0.05)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    by_sigint = (-signal.SIGINT, 128 + signal.SIGINT)
    # a node stopped by the forwarded SIGINT exited cleanly, unless it was the required node
    # that should have finished by itself
    return 0 if all(codes[n.name] == 0 or (codes[n.name] in by_sigint and (signalled or not n.required))
                    for n in nodes) else 1


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """['sim:=true', 'config:=x.yaml'] -> {'sim': 'true', 'config': 'x.yaml'}."""
    values = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"launch arguments: expected name:=value, got {item!r}")
        values[name] = value
    return values
