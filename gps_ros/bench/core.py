"""Timing of one local-policy iteration at the MDGPS peg size: dynamics fit and C-step.

Synthetic but realistic data: a random stable linear system (T=100, dX=26, dU=7), four
conditions, five noisy samples each from an LQR initial policy, a GMM dynamics prior
over a buffer of 20 samples, a quadratic cost. The C-step runs on the fitted dynamics,
cold (η from its default start) and warm (η from the previous solve, as in later
iterations).

    gps-ros bench core [--quick] [--seeds S] [--json FILE]
"""

from __future__ import annotations

import os
import time

import numpy as np

from gps_ros.bench.dynamics_timing import time_dynamics_fit
from gps_ros.bench.report import BenchOptions, BenchReport
from gps_ros.core.dynamics_fit import fit_dynamics, fit_initial_state
from gps_ros.core.kl_lqr import kl_constrained_lqr, init_lqr
from gps_ros.core.linear_system import QuadraticStateCost, random_stable_system
from gps_ros.core.noise import draw_noise
from gps_ros.core.priors import DynamicsPriorConfig, DynamicsPriorGMM
from gps_ros.core.traj_distribution import QuadraticCost

PEG = {"T": 100, "dX": 26, "dU": 7, "conditions": 4, "samples": 5, "max_samples": 20}
QUICK = {"T": 20, "dX": 26, "dU": 7, "conditions": 2, "samples": 5, "max_samples": 10}


def run(options: BenchOptions) -> BenchReport:
    size = QUICK if options.quick else PEG
    repeats = 2 if options.quick else 7
    report = BenchReport("core")
    for seed in range(options.seed, options.seed + options.seeds):
        dyn = time_dynamics_fit(repeats=repeats, seed=seed, **size)
        c_step = _time_c_step(seed=seed, repeats=repeats, **size)
        report.rows.append({"seed": seed, **{k: size[k] for k in ("T", "dX", "dU", "conditions", "samples")},
                            "dynamics_fit_ms": dyn["total_ms"], **c_step})
    report.notes.append("dynamics_fit_ms: GMM prior update + fit_dynamics, all conditions (median); "
                        "c_step_*_ms: one condition's C-step incl. η search (median); passes: backward passes (mean)")
    report.notes.append(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; "
                        "targets: C-step < 40 ms per condition, dynamics fit < 150 ms for 4 conditions")
    return report


def _time_c_step(T: int, dX: int, dU: int, conditions: int, samples: int, max_samples: int,
                 repeats: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    cost = QuadraticStateCost(np.eye(dX), 1e-2 * np.eye(dU), rng.standard_normal(dX))
    epsilon = 0.2 * T
    cold, warm, cold_passes, warm_passes = [], [], [], []
    for _ in range(conditions):
        x0 = rng.standard_normal(dX)
        policy = init_lqr(system.dynamics(), x0, 1e-2 * np.eye(dX), np.eye(dU), 0.1)
        prior = DynamicsPriorGMM(DynamicsPriorConfig(max_samples=max_samples))
        for _ in range(-(-max_samples // samples)):
            batch = system.rollout(policy, np.tile(x0, (samples, 1)) + 0.01 * rng.standard_normal((samples, dX)),
                                   draw_noise(rng, samples, T, dU), rng)
            prior.update(batch.X, batch.U)
        dynamics = fit_dynamics(batch.X, batch.U, prior)
        x1 = fit_initial_state(batch.X)
        quadratic = QuadraticCost.from_expansion(cost.expand(batch), batch.X, batch.U)
        for r in range(repeats):
            t0 = time.perf_counter()
            first = kl_constrained_lqr(dynamics, x1, quadratic, policy, epsilon)
            t1 = time.perf_counter()
            # A later iteration starts from the last η; a 20 % different ε stands for the step-size change.
            second = kl_constrained_lqr(dynamics, x1, quadratic, policy, 1.2 * epsilon, eta_start=first.eta)
            t2 = time.perf_counter()
            cold.append(t1 - t0)
            warm.append(t2 - t1)
            cold_passes.append(first.backward_passes)
            warm_passes.append(second.backward_passes)
    return {
        "c_step_cold_ms": float(np.median(cold) * 1e3), "cold_passes": float(np.mean(cold_passes)),
        "c_step_warm_ms": float(np.median(warm) * 1e3), "warm_passes": float(np.mean(warm_passes)),
    }


SCENARIOS = {"core": run}
