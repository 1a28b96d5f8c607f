"""The `gps-ros` command: benchmarks, training, and starting ROS 2 nodes without ros2 run."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

# Before numpy loads: the per-time-step matrices are small, and multi-threaded OpenBLAS
# is slower on them and stalls when another process (sim, controller) holds a core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from gps_ros.bench.report import BenchOptions  # noqa: E402

# Benchmark name -> the module whose SCENARIOS[name](options) -> BenchReport runs it
# (named here so that the command line does not import torch to list them).
BENCHMARKS = {
    "core": "gps_ros.bench.core",
    "sim": "gps_ros.bench.sim",
    "ros": "gps_ros.bench.ros_graph",
    "mdgps-peg": "gps_ros.bench.mdgps_scenarios",
    "mdgps-peg-blind": "gps_ros.bench.mdgps_scenarios",
    "badmm-peg": "gps_ros.bench.mdgps_scenarios",
    "pointmass-obstacle": "gps_ros.bench.mdgps_scenarios",
    "reset-free-reacher": "gps_ros.bench.reset_free_scenarios",
    "reset-free-peg-2d": "gps_ros.bench.reset_free_scenarios",
    "reset-free-peg-3d": "gps_ros.bench.reset_free_scenarios",
    "vision-reacher": "gps_ros.bench.reset_free_scenarios",
    "vgps-swimmer": "gps_ros.bench.known_dynamics_scenarios",
    "cgps-swimmer": "gps_ros.bench.known_dynamics_scenarios",
    "cgps-walker": "gps_ros.bench.known_dynamics_scenarios",
    "swimmer-direct-search": "gps_ros.bench.known_dynamics_scenarios",
}


def _bench(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.name])
    options = BenchOptions(quick=args.quick, seeds=args.seeds, seed=args.seed, variants=tuple(args.variants))
    report = module.SCENARIOS[args.name](options)
    print(report.table(), flush=True)
    if args.json:
        print("wrote " + " and ".join(str(p) for p in report.to_json(args.json)))
    return 0


def _node(args: argparse.Namespace) -> int:
    from gps_ros.ros.node_table import node_executables

    table = node_executables()
    if args.name not in table:
        raise SystemExit(f"node: expected one of {sorted(table)}, got {args.name!r}")
    module, function = table[args.name]
    return int(getattr(importlib.import_module(module), function)([args.name, *args.ros_args]) or 0)


def _launch(args: argparse.Namespace) -> int:
    from gps_ros.ros import launch_table

    try:
        nodes = launch_table.resolve(args.graph, launch_table.parse_assignments(args.arguments))
    except ValueError as err:
        raise SystemExit(f"launch: {err}") from None
    missing = launch_table.unavailable(nodes)
    for name, why in missing.items():
        print(f"[launch] node {name} is {why}", file=sys.stderr)
    if missing and not args.skip_missing and not args.dry_run:
        raise SystemExit(f"launch: {len(missing)} node(s) of {args.graph!r} cannot start; --skip-missing starts the others")
    nodes = [n for n in nodes if n.executable not in missing]
    if args.dry_run:
        for node in nodes:
            print(shlex.join(launch_table.node_command(node)))
        return 0
    return launch_table.run_nodes(nodes, args.shutdown_timeout)


def _train(args: argparse.Namespace) -> int:
    from gps_ros.train import train_main

    return train_main(args.overrides)


def _results(args: argparse.Namespace) -> int:
    from gps_ros.bench.results_table import results_table, update_readme

    table = results_table(args.folder)
    print(table)
    if args.readme:
        update_readme(args.readme, table)
        print(f"updated {args.readme}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gps-ros", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="run a benchmark scenario and print its figures")
    bench.add_argument("name", choices=sorted(BENCHMARKS))
    bench.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    bench.add_argument("--quick", action="store_true", help="smoke-sized run (what CI uses)")
    bench.add_argument("--seeds", type=int, default=1, help="independent repetitions (default 1)")
    bench.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    bench.add_argument("--variants", nargs="+", default=[], metavar="NAME",
                       help="run only these algorithm variants of the scenario (default: all)")
    bench.set_defaults(func=_bench)

    results = sub.add_parser("results", help="the results table from benchmark JSON files")
    results.add_argument("folder", help="folder of `gps-ros bench ... --json` files")
    results.add_argument("--readme", metavar="FILE", help="also write the table into FILE between its results markers")
    results.set_defaults(func=_results)

    node = sub.add_parser("node", help="run one ROS 2 node of gps_ros (what `ros2 run gps_ros NAME` runs)")
    node.add_argument("name")
    node.add_argument("ros_args", nargs=argparse.REMAINDER, help="passed to the node, e.g. --ros-args -p topic:=x")
    node.set_defaults(func=_node)

    launch = sub.add_parser("launch", help="start a node graph (train, run_policy) as subprocesses, like ros2 launch")
    launch.add_argument("graph", help="train | run_policy (see gps_ros/ros/launch_table.py)")
    launch.add_argument("arguments", nargs="*", help="launch arguments name:=value (sim, config, resume, policy, namespace)")
    launch.add_argument("--dry-run", action="store_true", help="print the node commands instead of running them")
    launch.add_argument("--skip-missing", action="store_true", help="start the available nodes when some are not written yet")
    launch.add_argument("--shutdown-timeout", type=float, default=10.0, help="s between forwarding SIGINT and killing (default 10)")
    launch.set_defaults(func=_launch)

    train = sub.add_parser("train", help="run the package's training job (see README)")
    train.add_argument("overrides", nargs="*", help="key:=value settings")
    train.set_defaults(func=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
