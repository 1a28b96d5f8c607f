"""MDGPS and BADMM benchmark scenarios (Montgomery & Levine 2016, Sec. 6): learning curves
of the neural global policy (2x40 ReLU MLP) on the paper's tasks.

    mdgps-peg          pr2_peg, 9 hole positions, 5 samples each per iteration, 12 iterations,
                       MDGPS off/on-policy x classic/global step size. Target (mean of 3 seeds,
                       off-policy classic, iteration 12): >= 90 % of training positions, >= 80 %
                       of 20 held-out positions
    mdgps-peg-blind    pr2_peg_blind (global policy sees joints only), 4 hole positions 0.02 m apart;
                       target >= 75 % by iteration 12
    badmm-peg          BADMM GPS on the mdgps-peg positions
    pointmass-obstacle the four MDGPS variants on the 5 starts of the obstacle task; target
                       (off-policy global): all 5 starts reach the target by iteration 5

    gps-ros bench NAME [--quick] [--seeds N] [--seed S] [--variants NAME ...] [--json FILE]

Peg scenarios use the peg tasks' cost (the MDGPS paper's peg cost, config/tasks/pr2_peg*.yaml),
the point mass a final-step cost (POINTMASS_COST) instead of its task's. Each scenario is
``run(options: BenchOptions) -> BenchReport`` in ``SCENARIOS``; options.quick is a CI-sized
smoke run (2 conditions, 2 iterations of 2 samples, a 50-step S-step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from gps_ros.agents.mujoco_agent import MujocoAgent
from gps_ros.algorithms.badmm import BADMM, BADMMConfig
from gps_ros.algorithms.global_policy import mlp_global_policy
from gps_ros.algorithms.mdgps import MDGPS, MDGPSConfig
from gps_ros.bench.gps_bench import AlgorithmFactory, GPSScenario, run_gps_scenario, summarize
from gps_ros.bench.report import BenchOptions, BenchReport
from gps_ros.core.costs import build_cost
from gps_ros.core.linear_gaussian import LinearGaussianPolicy, init_pd
from gps_ros.core.step_size import StepSizeConfig
from gps_ros.policies.sstep import SStepConfig
from gps_ros.sim.task import Task

MDGPS_VARIANTS = {
    "off-policy classic": {"sampling": "off_policy", "step_rule": "classic"},
    "off-policy global": {"sampling": "off_policy", "step_rule": "global"},
    "on-policy classic": {"sampling": "on_policy", "step_rule": "classic"},
    "on-policy global": {"sampling": "on_policy", "step_rule": "global"},
}


@dataclass(frozen=True)
class InitialPD:
    """Initial local policies: a PD controller u = kp (q* − q) − kd q̇ + noise.

    position / velocity: the state slices that play q and q̇ (dU entries each); q* is the
    start of the trial (hold still), or with via_points a via point of the condition index
    for the first via_steps steps and q = 0 (the target, for target-relative q) after."""

    position: str
    velocity: str
    kp: float
    kd: float
    noise_variance: float
    via_points: dict[int, tuple[float, ...]] = field(default_factory=dict)
    via_steps: int = 0

    def policies(self, agent: MujocoAgent, conditions: Sequence[int]) -> list[LinearGaussianPolicy]:
        sl = agent.task.state_slices
        out = []
        for c in conditions:
            agent.reset(c)
            hold = agent.state()[sl[self.position]]
            pd = [init_pd(agent.T, agent.dX, agent.dU, sl[self.position], sl[self.velocity], q,
                          self.kp, self.kd, self.noise_variance)
                  for q in ((np.array(self.via_points[c]), np.zeros(agent.dU)) if c in self.via_points else (hold, hold))]
            s = self.via_steps if c in self.via_points else agent.T
            out.append(LinearGaussianPolicy(np.concatenate([pd[0].K[:s], pd[1].K[s:]]),
                                            np.concatenate([pd[0].k[:s], pd[1].k[s:]]), pd[0].cov))
        return out


PEG_INIT = InitialPD("joint_angles", "joint_velocities", kp=20.0, kd=5.0, noise_variance=4.0)
# The walls make "straight at the target" a local minimum that linearised models cannot leave
# (from a PD hold, all starts measured stuck against a wall at 0.55 m): each start's initial
# controller heads for a via point beside its wall's open end for the first second, which
# picks the side to pass, then for the target.
POINTMASS_INIT = InitialPD(
    "ee_points", "ee_point_velocities", kp=10.0, kd=4.0, noise_variance=1.0,
    via_points={0: (-0.75, -0.4), 1: (-0.75, -0.4), 2: (0.75, 0.4), 3: (0.75, 0.4), 4: (-0.25, 0.85)}, via_steps=20,
)
# Final-step distance only (plus the task's action term): the task's quadratic ramp rewards
# reaching early, i.e. straight lines through the walls' ends.
POINTMASS_COST = {
    "type": "sum",
    "terms": [
        {"type": "action", "weights": [1e-3, 1e-3]},
        {"type": "ee_points", "slice": "ee_points", "l1": 1.0, "l2": 10.0, "alpha": 1e-5, "ramp": "final_only",
         "final_multiplier": 10.0},
    ],
}

def gps_factory(
    algorithm: type[MDGPS] | type[BADMM], config: MDGPSConfig | BADMMConfig, init: InitialPD,
    cost: dict | None = None, hidden_sizes: Sequence[int] = (40, 40),
) -> AlgorithmFactory:
    """Factory of fresh algorithms: the task's cost unless cost (a build_cost mapping) is given;
    the S-step's minibatches and the network's initial weights seeded by the run's seed."""
    def make(agent: MujocoAgent, conditions: Sequence[int], seed: int) -> MDGPS | BADMM:
        cfg = replace(config, s_step=replace(config.s_step, seed=seed))
        task_cost = agent.task.cost() if cost is None else build_cost(cost, name=f"{agent.task.name}.bench_cost")
        return algorithm(cfg, task_cost, init.policies(agent, conditions),
                         mlp_global_policy(agent.dO, agent.dU, hidden_sizes, seed=seed))
    return make


MDGPS_PEG = MDGPSConfig(kl_step=2.0, s_step=SStepConfig(iterations=3000, batch_size=64))
BADMM_PEG = BADMMConfig(kl_step=2.0, s_step=SStepConfig(iterations=3000, batch_size=64))
# Smaller, capped steps on the point mass: a long step lets the local policies cut the corner
# into a wall, which their linear models cannot see (measured: success falls to 40-80 % with
# kl_step 1-2 and steps up to 3). A start that the global policy misses stays missed (the C-step's
# KL bound to the global policy holds its local policy at the wall too), so the S-step gets 6000
# Adam steps: on 10 seeds not reported (10-19), all 5 starts at iteration 5 in 4 of 10 runs with
# 2000 steps, 8 of 10 with 6000, 5 of 7 with 12000. With 6000 steps on the same seeds the step
# rules differ: "global" (the step follows the global policy's own improvement) has all 5 starts
# at iteration 5 in 10 of 10 runs and in 56 of the 60 (run, iteration 5-10) pairs, "classic" in 8
# of 10 and 48 of 60, on-policy classic in 3 of 10: the target is held to off-policy global.
# Where it fails (reported seeds 1 and 2, S-step on the current samples), the iteration-2 global
# policy turns start 0 toward the target before its wall's lower end and sticks to the wall's face,
# although that start's local samples had reached the target; its local policy, sampled there,
# stays stuck from then on.
# Two changes measured worse on dev seeds 10-16 (all 5 starts at iteration 5, against 7 of 7 with
# these settings): start 0 passing above its wall, the nearer end (via point (-0.5, 1.0)), in 3 of
# 7 runs, and a clearance cost 0.5 * 100 * max(0, 0.15 - d)^2 on the distance d to each obstacle in 5 of 7.
# The S-step trains on the last 3 iterations' samples (as reset-free-reacher's does), so a start the
# network fitted once is not lost to one iteration's fit: on dev seeds 10-19 all 5 starts in 10 of 10
# runs at every iteration from 3 to 7 (the current samples only: 9, 9, 10, 10, 9 of 10), at iteration 5
# in 10 of 10 either way, and in 55 against 54 of the 60 (run, iteration 5-10) pairs. On the reported
# seeds it changed nothing at the target: seeds 1 and 2 still lose one start from iteration 1 or 2 on.
# On 20 more dev seeds (20-39) these settings have all 5 starts at iteration 5 in 17 of 20 runs (27 of
# 30 dev runs in all). Where a start is lost, either the S-step fitted samples stuck at a wall face, whose
# local policies' mean actions there reach 60-100 N against the 10 N actuator range, or a C-step moved a
# start's local policy into its wall (all 5 samples stuck). Clamping the S-step's target actions to the
# actuator range did not lower the rate: 13 of 14 runs (seeds 20-33) against 12 of 14 unclamped.
# The lost start is most often a corner cut: the C-step's new local policy, run without noise, hits
# the wall end that all 5 of its samples passed (its linear models cannot see the wall), and the
# S-step copies it. kl_step 0.25 (was 0.5, all else as above) halves that step: all 5 starts at
# iteration 5 in 36 of 40 dev runs (seeds 10-49) against 34 of 40, and in 221 against 194 of the 240
# (run, iteration 5-10) pairs; seeds 10-19 alone: 9 of 10 against 10 of 10. Where it still fails, a
# start is lost in iteration 1 (the global policy grazes a wall end its local policy just clears).
# Reported seeds 0-2 (run after the choice): all 5 starts at every iteration 1-10, as off-policy classic
# and on-policy global; at 36 of 40 on dev seeds, a 3-seed run still misses about 1 time in 4.
MDGPS_POINTMASS = MDGPSConfig(kl_step=0.25, step_size=StepSizeConfig(min_mult=0.1, max_mult=1.0),
                              s_step=SStepConfig(iterations=6000, batch_size=64), s_step_history=3)
QUICK_S_STEP = SStepConfig(iterations=50, batch_size=32)


def _scenario(
    name: str, task: str | Task, conditions: Sequence[int], iterations: int, variants: dict[str, AlgorithmFactory],
    options: BenchOptions, n_held_out: int = 20,
) -> BenchReport:
    only = options.variants
    if only:
        unknown = sorted(set(only) - set(variants))
        if unknown:
            raise ValueError(f"variants: expected names among {sorted(variants)}, got {unknown}")
        variants = {k: v for k, v in variants.items() if k in only}
    if options.quick:
        scenario = GPSScenario(name, task, list(conditions)[:2], 2, 2, variants, n_held_out=min(2, n_held_out))
    else:
        scenario = GPSScenario(name, task, conditions, iterations, 5, variants, n_held_out=n_held_out)
    report = run_gps_scenario(scenario, options)
    summarize(report)
    return report


def _mdgps_variants(init: InitialPD, config: MDGPSConfig, cost: dict | None, quick: bool) -> dict[str, AlgorithmFactory]:
    if quick:
        config = replace(config, s_step=QUICK_S_STEP)
    return {name: gps_factory(MDGPS, replace(config, **kw), init, cost) for name, kw in MDGPS_VARIANTS.items()}


def mdgps_peg(options: BenchOptions) -> BenchReport:
    return _scenario("mdgps-peg", "pr2_peg", range(9), 12, _mdgps_variants(PEG_INIT, MDGPS_PEG, None, options.quick),
                     options)


def mdgps_peg_blind(options: BenchOptions) -> BenchReport:
    return _scenario("mdgps-peg-blind", "pr2_peg_blind", range(4), 12,
                     _mdgps_variants(PEG_INIT, MDGPS_PEG, None, options.quick), options)


def badmm_peg(options: BenchOptions) -> BenchReport:
    config = replace(BADMM_PEG, s_step=QUICK_S_STEP) if options.quick else BADMM_PEG
    return _scenario("badmm-peg", "pr2_peg", range(9), 12, {"badmm": gps_factory(BADMM, config, PEG_INIT)}, options)


def pointmass_obstacle(options: BenchOptions) -> BenchReport:
    return _scenario("pointmass-obstacle", "pointmass_obstacle", range(5), 10,
                     _mdgps_variants(POINTMASS_INIT, MDGPS_POINTMASS, POINTMASS_COST, options.quick), options)


SCENARIOS: dict[str, Callable[..., BenchReport]] = {
    "mdgps-peg": mdgps_peg,
    "mdgps-peg-blind": mdgps_peg_blind,
    "badmm-peg": badmm_peg,
    "pointmass-obstacle": pointmass_obstacle,
}
