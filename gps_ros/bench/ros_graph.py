"""Speed of trials through the ROS 2 node graph (lock-step sim + controller + recorder, each
in its own process, real DDS on localhost) beside the in-process MujocoAgent on the same trials.

pr2_peg trials of T = 100 steps (5 s of robot time) with a PD policy and folded exploration
noise, each after a ResetScene, sent by a RosAgent the way the learner sends them (waiting
for the recorder to have the trial on disk). Prints trials per second through the graph and
in-process, their ratio, and the real-time factor of the graph (robot time / wall time per
trial). Target: real-time factor >= 20 (a 100-step trial in under 0.25 s).

    gps-ros bench ros [--quick] [--seeds S] [--json FILE]
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

# gps_ros.agents first: it makes MUJOCO_GL default to egl before mujoco loads.
from gps_ros.agents import MujocoAgent  # isort: skip
from gps_ros.bench.report import BenchOptions, BenchReport
from gps_ros.core.linear_gaussian import init_pd

TASK = "pr2_peg"
GRAPH_NODES = ("sim", "controller", "recorder")


def run(options: BenchOptions) -> BenchReport:
    trials = 4 if options.quick else 40
    agent = MujocoAgent(TASK)
    task, sl = agent.task, agent.task.state_slices
    policy = init_pd(agent.T, agent.dX, agent.dU, sl["joint_angles"], sl["joint_velocities"],
                     task.config.initial_qpos, kp=20.0, kd=5.0, noise_variance=1.0)
    conditions = [c % len(task.conditions) for c in range(trials)]
    report = BenchReport("ros")
    # A private DDS domain (the nodes inherit it): the benchmark's graph must not meet another one here.
    saved = {key: os.environ.get(key) for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(random.Random().randint(101, 200))
    try:
        _measure(options, agent, policy, conditions, report)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    report.notes += [
        "graph: sim (lock-step) + controller + recorder in their own processes, RosAgent in this one, a ResetScene "
        "before every trial and the recorder's confirmation after it; agent: MujocoAgent.sample_many in-process",
        "target: real_time_factor >= 20 (a 100-step, 5 s trial in under 0.25 s)",
    ]
    return report


def _measure(options: BenchOptions, agent: MujocoAgent, policy, conditions: list[int], report: BenchReport) -> None:
    import rclpy

    from gps_ros.ros.launch_table import node_command, resolve, stop_process
    from gps_ros.ros.ros_agent import RosAgent, RosAgentConfig

    task, sl, trials = agent.task, agent.task.state_slices, len(conditions)
    with tempfile.TemporaryDirectory(prefix="gps_ros_bench_") as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(f"task: {TASK}\noutput_dir: {tmp}\n")
        nodes = [n for n in resolve("train", {"sim": "true", "config": str(config)}) if n.name in GRAPH_NODES]
        procs = [_start(node_command(n), Path(tmp) / f"{n.name}.log") for n in nodes]
        rclpy.init()
        node = rclpy.create_node("bench_ros")
        try:
            ros_agent = RosAgent(node, RosAgentConfig(
                task.T, task.dX, task.dU, task.dO, dt=task.dt, state_sensors=tuple(sl),
                observation_sensors=tuple(task.config.obs), server_timeout=60.0))
            ros_agent.sample(policy, 0, seed=0)  # warm-up: discovery, first allocations
            for seed in range(options.seed, options.seed + options.seeds):
                start = time.perf_counter()
                ros_agent.sample_many(policy, conditions, seed=seed)
                graph_s = time.perf_counter() - start
                start = time.perf_counter()
                agent.sample_many(policy, conditions, seed=seed)
                agent_s = time.perf_counter() - start
                report.rows.append({
                    "seed": seed, "task": TASK, "T": task.T, "trials": trials,
                    "graph_trials_per_s": trials / graph_s, "agent_trials_per_s": trials / agent_s,
                    "graph_over_agent": agent_s / graph_s,
                    "graph_ms_per_trial": 1e3 * graph_s / trials,
                    "real_time_factor": trials * task.T * task.dt / graph_s,
                })
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
            for proc in procs:
                stop_process(proc)


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as stream:
        return subprocess.Popen(cmd, stdout=stream, stderr=subprocess.STDOUT)


SCENARIOS = {"ros": run}
