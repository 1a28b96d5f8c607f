"""The training job behind `make train` / `gps-ros train`: an algorithm on a MuJoCo task.

Reads a YAML config (config/train/*.yaml), runs the iterations with the in-process agent,
prints progress (iteration, samples, cost, success, ETA), and writes metrics.json and a
learning-curve plot to the output folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import yaml

from gps_ros.agents.evaluate import evaluate
from gps_ros.agents.mujoco_agent import MujocoAgent
from gps_ros.algorithms.traj_opt import TrajOpt, TrajOptConfig
from gps_ros.core.linear_gaussian import init_pd
from gps_ros.core.step_size import StepSizeConfig
from gps_ros.resources import config_path

DEFAULT_CONFIG = "train/traj_opt_reacher.yaml"


@dataclass(frozen=True)
class InitialPolicyConfig:
    """PD controller holding each condition's initial pose: u = kp (q0 - q) - kd q̇ + noise."""

    kp: float = 1.0
    kd: float = 0.1
    noise_variance: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """task: a task name (config/tasks) or YAML path; conditions: fixed condition indices;
    samples_per_condition: N per iteration; kl_step, min_step_mult, max_step_mult: the
    traj-opt step size; output_dir: where metrics and plots go."""

    task: str
    algorithm: str = "traj_opt"
    conditions: Sequence[int] = (0,)
    iterations: int = 10
    samples_per_condition: int = 5
    seed: int = 0
    kl_step: float = 1.0
    min_step_mult: float = 0.1
    max_step_mult: float = 10.0
    initial_policy: InitialPolicyConfig = field(default_factory=InitialPolicyConfig)
    output_dir: str = "runs/train"

    @staticmethod
    def from_dict(raw: Mapping, name: str = "train") -> TrainConfig:
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{name}.{unknown[0]}: unknown key; expected one of {sorted(known)}")
        values = dict(raw)
        if "initial_policy" in values:
            pol = dict(values["initial_policy"])
            pol_known = {f.name for f in fields(InitialPolicyConfig)}
            bad = sorted(set(pol) - pol_known)
            if bad:
                raise ValueError(f"{name}.initial_policy.{bad[0]}: unknown key; expected one of {sorted(pol_known)}")
            values["initial_policy"] = InitialPolicyConfig(**pol)
        config = TrainConfig(**values)
        if config.algorithm != "traj_opt":
            raise ValueError(f"{name}.algorithm: expected 'traj_opt' (the algorithms available so far), got {config.algorithm!r}")
        for key in ("iterations", "samples_per_condition"):
            if int(getattr(config, key)) < 1:
                raise ValueError(f"{name}.{key}: expected an integer >= 1, got {getattr(config, key)}")
        return config


@dataclass
class IterationMetrics:
    iteration: int
    samples_so_far: int
    mean_sample_cost: float
    success_rate: float
    mean_final_distance: float
    seconds: float


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read the YAML config and apply ``key:=value`` overrides (values parsed as YAML)."""
    file = Path(path) if path else config_path(DEFAULT_CONFIG)
    with open(file) as fh:
        raw = yaml.safe_load(fh) or {}
    for item in overrides:
        key, sep, value = item.partition(":=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected key:=value")
        raw[key] = yaml.safe_load(value)
    return TrainConfig.from_dict(raw)


def run_training(config: TrainConfig, log=print) -> list[IterationMetrics]:
    agent = MujocoAgent(config.task)
    task = agent.task
    q, qd = task.state_slices["joint_angles"], task.state_slices["joint_velocities"]
    conditions = [task.condition(c) for c in config.conditions]
    init = config.initial_policy
    policies = [
        init_pd(agent.T, agent.dX, agent.dU, q, qd, cond.qpos, init.kp, init.kd, init.noise_variance)
        for cond in conditions
    ]
    algorithm = TrajOpt(
        TrajOptConfig(
            kl_step=config.kl_step,
            step_size=StepSizeConfig(min_mult=config.min_step_mult, max_mult=config.max_step_mult),
        ),
        [task.cost() for _ in conditions],
        policies,
    )
    rng = np.random.default_rng(config.seed)
    history: list[IterationMetrics] = []
    started = time.monotonic()
    n = config.samples_per_condition
    for it in range(config.iterations):
        t0 = time.monotonic()
        samples = [
            agent.sample_many(pol, [cond] * n, seed=int(rng.integers(2**31)))
            for pol, cond in zip(algorithm.local_policies, conditions)
        ]
        result = algorithm.iteration(samples)
        evaluations = [evaluate(agent, pol, [cond]) for pol, cond in zip(algorithm.local_policies, conditions)]
        metrics = IterationMetrics(
            iteration=it + 1,
            samples_so_far=(it + 1) * n * len(conditions),
            mean_sample_cost=result.mean_sample_cost,
            success_rate=float(np.mean([e.success_rate for e in evaluations])),
            mean_final_distance=float(np.mean([e.mean_final_distance for e in evaluations])),
            seconds=time.monotonic() - t0,
        )
        history.append(metrics)
        eta = (time.monotonic() - started) / (it + 1) * (config.iterations - it - 1)
        log(
            f"[{config.algorithm} {task.name}] iter {it + 1}/{config.iterations}  samples {metrics.samples_so_far}  "
            f"cost of samples {metrics.mean_sample_cost:.4g}  new local policies: success "
            f"{100 * metrics.success_rate:.0f}%  final distance {metrics.mean_final_distance:.3f} m  "
            f"({metrics.seconds:.1f} s, ETA {eta:.0f} s)"
        )
    return history


def write_results(config: TrainConfig, history: Sequence[IterationMetrics]) -> tuple[Path, Path]:
    """metrics.json (atomic) and learning_curve.png in config.output_dir."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    payload = {"config": _jsonable(config), "iterations": [vars(m) for m in history]}
    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, suffix=".tmp") as tmp:
        json.dump(payload, tmp, indent=2)
    os.replace(tmp.name, metrics_path)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [m.iteration for m in history]
    fig, (ax_cost, ax_succ) = plt.subplots(1, 2, figsize=(10, 4))
    ax_cost.plot(its, [m.mean_sample_cost for m in history], "o-")
    ax_cost.set(xlabel="iteration", ylabel="mean cost of the samples", title=f"{config.algorithm} on {config.task}")
    ax_succ.plot(its, [100 * m.success_rate for m in history], "o-", label="success (%)")
    ax_succ.set(xlabel="iteration", ylabel="success of the new local policies (%)", ylim=(-5, 105))
    fig.tight_layout()
    plot_path = out / "learning_curve.png"
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)
    return metrics_path, plot_path


def _jsonable(config: TrainConfig) -> dict:
    return json.loads(json.dumps(config, default=lambda o: vars(o) if hasattr(o, "__dict__") else list(o)))


def train_main(args: Sequence[str]) -> int:
    """`gps-ros train [CONFIG.yaml] [key:=value ...]`."""
    path = next((a for a in args if ":=" not in a), None)
    config = load_config(path, [a for a in args if ":=" in a])
    history = run_training(config)
    metrics_path, plot_path = write_results(config, history)
    last = history[-1]
    print(
        f"done: {last.samples_so_far} samples, final success {100 * last.success_rate:.0f}% "
        f"({len(config.conditions)} conditions), mean final distance {last.mean_final_distance:.3f} m"
    )
    print(f"wrote {metrics_path} and {plot_path}")
    return 0
