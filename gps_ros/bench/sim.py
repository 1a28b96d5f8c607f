"""Speed of the in-process MuJoCo agent against a bare MuJoCo loop, and of rendering.

pr2_peg trials of T=100 steps (20 physics steps each) with a linear-Gaussian policy
(PD hold around the initial pose, exploration noise) through ``MujocoAgent.sample``
(state only), next to a bare loop that sets ctrl and calls mj_step with the same
substeps on the same model, replaying the agent's torques from the same initial state
(the same physics work). Also 64x64 camera frames per second. Targets: agent / bare
>= 0.7, rendering >= 150 fps.

    gps-ros bench sim [--quick] [--json FILE]
"""

from __future__ import annotations

import time

# gps_ros.agents first: it makes MUJOCO_GL default to egl before mujoco loads.
from gps_ros.agents import MujocoAgent  # isort: skip
import mujoco
import numpy as np

from gps_ros.bench.report import BenchOptions, BenchReport
from gps_ros.core.linear_gaussian import init_pd

TASK = "pr2_peg"
REPEATS = 3


def run(options: BenchOptions) -> BenchReport:
    trials = 4 if options.quick else 40
    frames = 30 if options.quick else 300
    agent = MujocoAgent(TASK)
    sl = agent.task.state_slices
    policy = init_pd(
        agent.T, agent.dX, agent.dU, sl["joint_angles"], sl["joint_velocities"],
        agent.task.config.initial_qpos, kp=20.0, kd=5.0, noise_variance=1.0,
    )
    report = BenchReport("sim")
    for seed in range(options.seed, options.seed + options.seeds):
        conditions = [c % len(agent.task.conditions) for c in range(trials)]
        agent.sample(policy, 0, seed=seed)  # warm-up (first-call allocations)
        # Interleaved repeats, best of each: other load on the machine hits both alike.
        agent_s = bare_s = np.inf
        for _ in range(REPEATS):
            start = time.perf_counter()
            samples = [agent.sample(policy, c, seed=seed + i) for i, c in enumerate(conditions)]
            agent_s = min(agent_s, time.perf_counter() - start)
            bare_s = min(bare_s, _bare_loop(agent, conditions, [s.U[0] for s in samples]))
        fps = _render_fps(agent, frames)
        report.rows.append({
            "seed": seed, "task": TASK, "T": agent.T, "substeps": agent.task.config.substeps, "trials": trials,
            "bare_trials_per_s": trials / bare_s, "agent_trials_per_s": trials / agent_s,
            "agent_over_bare": bare_s / agent_s, "render_fps_64": fps,
        })
    report.notes.append("targets: agent_over_bare >= 0.7, render_fps_64 >= 150")
    return report


def _bare_loop(agent: MujocoAgent, conditions: list[int], actions: list[np.ndarray]) -> float:
    """Seconds to replay the actions [T, dU] per trial with only ctrl + mj_step."""
    m, d, substeps = agent.model, agent.data, agent.task.config.substeps
    total = 0.0
    for cond, U in zip(conditions, actions):
        agent.reset(cond)
        start = time.perf_counter()
        for u in U:
            d.ctrl[:] = u
            mujoco.mj_step(m, d, substeps)
        total += time.perf_counter() - start
    return total


def _render_fps(agent: MujocoAgent, frames: int) -> float:
    agent.reset(0)
    out = np.empty((agent.render_spec.height, agent.render_spec.width, 3), dtype=np.uint8)
    camera = agent.camera()
    camera.render(agent.data, out)
    start = time.perf_counter()
    for _ in range(frames):
        camera.render(agent.data, out)
    return frames / (time.perf_counter() - start)


SCENARIOS = {"sim": run}
