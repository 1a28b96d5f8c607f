"""Shared runner for the GPS benchmark scenarios (MDGPS, BADMM, ...) on a MuJoCo task.

Per iteration and (variant, seed): sample every training condition from the
algorithm's ``sampling_policies()``, run ``iteration``, then evaluate the global
policy's mean actions on the training conditions and on held-out placements drawn
inside the training region (``task.random_condition`` with a held-out seed that no
training run uses). One report row per iteration holds the samples used so far, final
distances (mean, std), success rates, the S-step's final loss (summed over its (t, i, j)
on the full dataset: how well the network fits the local policies), the wall-time split and
the seeds; progress goes to stderr, one line per iteration.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gps_ros.agents.evaluate import evaluate
from gps_ros.agents.mujoco_agent import MujocoAgent
from gps_ros.algorithms.global_policy import GPSIterationResult
from gps_ros.bench.report import BenchOptions, BenchReport, PlotSpec
from gps_ros.core.samples import SampleBatch
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.threads import torch_threads
from gps_ros.sim.task import Task

# Far from the training seeds (options.seed + small offsets), so held-out placements never repeat training draws.
HELD_OUT_SEED = 7_919_000


class GPSAlgorithm(Protocol):
    global_policy: GaussianPolicy

    def sampling_policies(self) -> list: ...

    def iteration(self, samples_per_condition: Sequence[SampleBatch]) -> GPSIterationResult: ...


# (agent, training condition indices, seed) -> a fresh algorithm
AlgorithmFactory = Callable[[MujocoAgent, Sequence[int], int], GPSAlgorithm]


@dataclass(frozen=True)
class GPSScenario:
    """name: the report's name; task: a task name or a Task; conditions: indices of its fixed conditions;
    iterations, samples_per_condition: the training budget; n_held_out: held-out placements
    evaluated per iteration; variants: variant name -> algorithm factory."""

    name: str
    task: str | Task
    conditions: Sequence[int]
    iterations: int
    samples_per_condition: int
    variants: dict[str, AlgorithmFactory]
    n_held_out: int = 20

    def __post_init__(self) -> None:
        for key in ("iterations", "samples_per_condition"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key}: expected an integer >= 1, got {getattr(self, key)}")
        if int(self.n_held_out) < 0:
            raise ValueError(f"n_held_out: expected a count >= 0, got {self.n_held_out}")
        if not self.conditions:
            raise ValueError("conditions: expected at least one training condition index, got none")
        if not self.variants:
            raise ValueError("variants: expected at least one algorithm variant, got none")


def run_gps_scenario(scenario: GPSScenario, options: BenchOptions, log: Callable[[str], None] | None = None) -> BenchReport:
    """Train every variant for options.seeds seeds (from options.seed); one row per iteration."""
    log = log or _stderr
    if int(options.seeds) < 1:
        raise ValueError(f"options.seeds: expected an integer >= 1, got {options.seeds}")
    agent = MujocoAgent(scenario.task)
    n_conditions = len(agent.task.conditions)
    bad = [c for c in scenario.conditions if not 0 <= int(c) < n_conditions]
    if bad:
        raise ValueError(f"conditions: expected indices in [0, {n_conditions}) for task {agent.task.name!r}, got {bad}")
    report = BenchReport(scenario.name)
    with torch_threads(1):  # the S-step and the global policy's act calls (policies.threads)
        _run_all(agent, scenario, options, report, log)
    report.plot = learning_curve_plot(report)
    report.notes += [
        f"task {agent.task.name}: training conditions {list(scenario.conditions)}, {scenario.samples_per_condition} "
        f"samples per condition per iteration; global policy evaluated with mean actions",
        f"held-out: {scenario.n_held_out} placements from task.random_condition, seed {HELD_OUT_SEED} (not a training seed)",
        "times (s): sampling_s (training samples), linearization_s (dynamics fit + global policy linearisation), "
        "c_step_s, s_step_s, eval_s (evaluation trials)",
    ]
    return report


def _run_all(
    agent: MujocoAgent, scenario: GPSScenario, options: BenchOptions, report: BenchReport, log: Callable[[str], None]
) -> None:
    total = len(scenario.variants) * options.seeds * scenario.iterations
    done, started = 0, time.monotonic()
    for variant, factory in scenario.variants.items():
        for seed in range(options.seed, options.seed + options.seeds):
            algorithm = factory(agent, list(scenario.conditions), seed)
            rng = np.random.default_rng(seed)
            for it in range(1, scenario.iterations + 1):
                row = _run_iteration(agent, scenario, algorithm, rng, variant, seed, it)
                report.rows.append(row)
                done += 1
                eta = (time.monotonic() - started) / done * (total - done)
                log(
                    f"[{scenario.name} {variant} seed {seed}] iter {it}/{scenario.iterations}  samples {row['samples']}  "
                    f"cost {row['sample_cost']:.4g}  train success {100 * row['train_success']:.0f}% "
                    f"(dist {row['train_dist_mean']:.3f} m)  held-out {100 * row['held_out_success']:.0f}%  "
                    f"step {row['step_mult']:.2f}  ({row['iteration_s']:.1f} s, ETA {eta:.0f} s)"
                )


def _run_iteration(
    agent: MujocoAgent, scenario: GPSScenario, algorithm: GPSAlgorithm, rng: np.random.Generator,
    variant: str, seed: int, it: int,
) -> dict:
    n = scenario.samples_per_condition
    t0 = time.perf_counter()
    samples = [
        agent.sample_many(policy, [c] * n, seed=int(rng.integers(2**31)))
        for policy, c in zip(algorithm.sampling_policies(), scenario.conditions)
    ]
    sampling_s = time.perf_counter() - t0
    result = algorithm.iteration(samples)
    t1 = time.perf_counter()
    train = evaluate(agent, algorithm.global_policy, list(scenario.conditions))
    held = evaluate(agent, algorithm.global_policy, [], n_random=scenario.n_held_out, seed=HELD_OUT_SEED) \
        if scenario.n_held_out else None
    eval_s = time.perf_counter() - t1
    times = result.times
    return {
        "variant": variant,
        "seed": seed,
        "iteration": it,
        "samples": it * n * len(scenario.conditions),
        "sample_cost": result.mean_sample_cost,
        "step_mult": float(np.mean([c.step_mult for c in result.conditions])),
        "train_success": train.success_rate,
        "train_dist_mean": train.mean_final_distance,
        "train_dist_std": float(np.std(train.final_distance)),
        "held_out_success": held.success_rate if held else float("nan"),
        "held_out_dist_mean": held.mean_final_distance if held else float("nan"),
        "held_out_dist_std": float(np.std(held.final_distance)) if held else float("nan"),
        "s_step_loss": result.s_step_loss,
        "sampling_s": sampling_s,
        "linearization_s": times.linearization_s,
        "c_step_s": times.c_step_s,
        "s_step_s": times.s_step_s,
        "eval_s": eval_s,
        "iteration_s": sampling_s + times.linearization_s + times.c_step_s + times.s_step_s + eval_s,
    }


def learning_curves(report: BenchReport, key: str = "train_success") -> dict[str, tuple[list[float], list[float]]]:
    """variant -> (samples, mean over seeds of ``key``) from the report's rows."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for variant in dict.fromkeys(r["variant"] for r in report.rows):
        rows = [r for r in report.rows if r["variant"] == variant]
        samples = sorted({r["samples"] for r in rows})
        curves[variant] = (samples, [float(np.mean([r[key] for r in rows if r["samples"] == s])) for s in samples])
    return curves


def learning_curve_plot(report: BenchReport) -> PlotSpec:
    """Train and held-out success of every variant against samples used."""
    curves = {f"{v} train": c for v, c in learning_curves(report, "train_success").items()}
    curves |= {f"{v} held-out": c for v, c in learning_curves(report, "held_out_success").items()}
    return PlotSpec(curves, "samples", "success rate (global policy)")


def summarize(report: BenchReport, keys: Sequence[str] = ("train_success", "held_out_success", "train_dist_mean")) -> None:
    """Add one note per variant and iteration checkpoint: the mean and std over seeds of keys."""
    for variant in dict.fromkeys(r["variant"] for r in report.rows):
        rows = [r for r in report.rows if r["variant"] == variant]
        last = max(r["iteration"] for r in rows)
        for it in sorted({3, 6, 9, 12, 5, last} & {r["iteration"] for r in rows}):
            at = [r for r in rows if r["iteration"] == it]
            figures = ", ".join(f"{k} {np.mean([r[k] for r in at]):.3g}±{np.std([r[k] for r in at]):.2g}" for k in keys)
            report.notes.append(f"{variant} iter {it} (mean±std over {len(at)} seeds): {figures}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
