"""Known-dynamics GPS benchmarks (variational GPS 2013 Fig. 1, constrained GPS 2014 Fig. 1).

    vgps-swimmer   variational GPS, 5-unit soft-rectifier policy, swimmer, 4 initial states
    cgps-swimmer   constrained GPS, 5-unit policy, swimmer, 4 initial states; both swimmers' DDP
                   starts from a travelling wave of joint torques (swimming_wave)
    cgps-walker    constrained GPS, 10-unit policy, walker, 4 training and 4 test initial states;
                   initial trajectories: DDP from the hand-written state-gated gait's actions
                   (gps_ros.sim.gait.demonstration); the gait controller labels the initial
                   policy fit (ConstrainedGPS's demonstrator) and 4 rounds of π's own rollouts
                   added to it (demonstrator_rounds), from 3 initial weights, the cheapest fit
                   kept; policy steps that raise π's cost by more than 5 % are undone (both
                   by π's stochastic cost under fixed noise)
    swimmer-direct-search  not GPS: CMA-ES on the 5-unit policy's weights against the deterministic
                   cost (DirectPolicySearch), the vgps-swimmer states and DDP reference: what the
                   policy class reaches

    gps-ros bench NAME [--quick] [--seeds N] [--seed S] [--json FILE]

Per iteration, on the training initial states: the average task cost (β = 1, summed over the
horizon) of the stochastic policy (``stochastic_samples`` noisy rollouts per state) and of the
deterministic (mean) policy, beside the cost of the initial DDP solution (its mean trajectory) and
of the current trajectory distributions q_i (``q_cost``, their means under the model), the policy
step's final loss (the direct search: candidates evaluated and CMA-ES's step size), whether the
policy step stood (``policy_step_accepted``, with CGPS's policy_step_tolerance), and the
deterministic policy's forward distance; the walker also counts test initial states walked
(task.walked: the whole horizon without falling, at 0.4 m/s or faster on average). Targets (issue #7): swimmers: deterministic cost within
10 % of the DDP cost and forward distance > 0; walker: walked from >= 3 of 4 test initial states.
Cost magnitudes β are ours: the tasks' costs are small numbers (w_u = 1e-5), and q's max-entropy
action std is about 1/sqrt(2 β w_u), useful near 1; the schedules keep the papers' ratios (VGPS: ÷10
over 50 iterations, CGPS: ×10 over 50 iterations).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from gps_ros.algorithms.constrained_gps import CGPSConfig, CGPSIteration, ConstrainedGPS
from gps_ros.algorithms.direct_policy_search import DirectPolicySearch, DirectSearchConfig, DirectSearchIteration
from gps_ros.algorithms.known_model_search import policy_rollouts, summed_cost
from gps_ros.algorithms.variational_gps import CostSchedule, VariationalGPS, VGPSConfig
from gps_ros.bench.report import BenchOptions, BenchReport, PlotSpec
from gps_ros.core.cgps_trajectory import CGPSTrajectorySettings, CovarianceUpdateSettings
from gps_ros.core.ilqg import ILQGSettings
from gps_ros.policies.softplus_policy import PolicyFitSettings, SoftplusPolicy
from gps_ros.policies.threads import torch_threads
from gps_ros.sim.gait import GaitController, demonstration
from gps_ros.sim.locomotion import LocomotionTask, swimmer_task, walker_task


@dataclass(frozen=True)
class Scenario:
    """algorithm: "vgps", "cgps" or "direct" (DirectPolicySearch, the policy class's reference);
    hidden: policy hidden units; conditions: training initial states; test_conditions: extra
    held-out initial states (0: none); T: horizon (None: the task's); init: the actions DDP starts
    from: "wave" (swimming_wave) or "gait" (the walker's gait demonstration); stochastic_samples: noisy rollouts per state (0: no stochastic cost)."""

    name: str
    algorithm: str
    task: Callable[[], LocomotionTask]
    hidden: int
    conditions: int
    iterations: int
    config: VGPSConfig | CGPSConfig | DirectSearchConfig
    test_conditions: int = 0
    T: int | None = None
    init: str = "wave"
    stochastic_samples: int = 3


# Alg. 2's K/A update warm-starts from the previous q, where the paper finds two passes enough.
_COVARIANCE = CovarianceUpdateSettings(max_inner_iterations=10, max_outer_iterations=3, tolerance=1e-6)

# The CGPS swimmer (seed 0, 4 states, 20 iterations) starts at β 1e3, not 1e4, and with λ_t = 0.01:
# at β 1e4 the K/A update hit a singular A at iteration 3; at 1e3 with λ_t = 1 the policy collapsed
# (cost 13.4, 0.15 m backwards at iteration 20). The initial I-projection (unit weights) is ruled by
# the few steps where q's action covariance is tiny (eigenvalues down to 1e-5): π starts nearly
# deterministic (σ 0.008) and not swimming (cost 8.4-9.2), and λ_t = 1 pulls q onto it (q's cost
# 0.35 -> 23 in one step); from λ_t = 0.01 the dual ascent raises λ_t where π and q disagree
# (cost 1.1, 1.16 m forward at iteration 20). These settings were chosen before the initial policy
# was fit by maximum likelihood and the mean update started from π's rollout (CGPSConfig's
# trajectory_start): with both, dev seed 10 ended at 0.28 (0.92 × its DDP) at iteration 20,
# against 0.62 (2.0 ×) before; with the rollout start alone and the I-projection's initial π it
# stayed at the non-swimming policy (cost 7.0 at iteration 4). 50 iterations, the schedule's
# annealing length. η (dual_step) 0.2, not 2: the first dual step meets a KL of about 600 at a few
# steps where q's action covariance is tiny, so with η = 2 those λ_t jumped to about 1200 against a
# median near 10, and at iteration 37 of reported seed 0 the λ-weighted I-projection broke (KL up
# to 645 and the policy's cost 0.26 -> 1.9-3.0; 0.97 at iteration 50); with η = 0.2 the same seed fell
# steadily to 0.22 (0.64 × DDP) at iteration 50. This was diagnosed on a reported seed; dev seed 11
# (not reported) checks it: see the closing note of issue #7.
# The VGPS swimmer anneals β from 1e3 to 1e2, not 1e4 to 1e3 (dev seed 10, E-step from q's previous
# mean): at the higher magnitudes the E-step's −log π term barely moved q (q's cost stayed at
# 0.28-0.30, below DDP's, in a gait the 5-unit policy does not reproduce) and the deterministic
# policy ended at 1.0-1.4 (3.3-4.3 × DDP, iterations 36-42); from 1e3 to 1e2 it ended at 0.44
# (1.4 × DDP); from 1e2 to 1e1 q moved away from the cost optimum (0.30 -> 0.47) and the policy
# ended at 0.63. The E-step now starts from π's own rollout (VGPSConfig.e_step_start "policy"): at
# 1e3 -> 1e2, 50 iterations, dev seeds 10 and 11 ended at 0.22 and 0.34 (0.71 and 1.00 × DDP).
# 100 iterations, the last 50 at β_final, as the paper's Fig. 1 (x axis to 100).
SETTINGS = {
    "vgps-swimmer": Scenario(
        "vgps-swimmer", "vgps", swimmer_task, hidden=5, conditions=4, iterations=100,
        config=VGPSConfig(
            schedule=CostSchedule(1e3, 1e2, 50),
            initial_ddp=ILQGSettings(max_iterations=60),
            e_step=ILQGSettings(max_iterations=5, initial_state_cov=1e-6),
            fit_samples=10, linearization_samples=10,
        ),
    ),
    "cgps-swimmer": Scenario(
        "cgps-swimmer", "cgps", swimmer_task, hidden=5, conditions=4, iterations=50,
        config=CGPSConfig(
            schedule=CostSchedule(1e3, 1e4, 50),
            initial_ddp=ILQGSettings(max_iterations=60),
            trajectory=CGPSTrajectorySettings(ddp=ILQGSettings(max_iterations=5, initial_state_cov=1e-6),
                                              covariance=_COVARIANCE),
            lambda_init=0.01, dual_step=0.2, fit_samples=10, linearization_samples=10,
        ),
    ),
    # What the 5-unit policy class itself reaches on the swimmer: CMA-ES on the mean network's weights
    # (no GPS), from the same 4 initial states, against the same DDP reference as vgps-swimmer (its
    # initial DDP settings and β₀); no stochastic cost (log σ is not searched).
    "swimmer-direct-search": Scenario(
        "swimmer-direct-search", "direct", swimmer_task, hidden=5, conditions=4, iterations=40,
        config=DirectSearchConfig(generations=20, population=16, initial_sigma=0.1, ddp_cost_weight=1e3,
                                  initial_ddp=ILQGSettings(max_iterations=60, initial_state_cov=1e-6)),
        stochastic_samples=0,
    ),
    # The CGPS walker starts from the state-gated gait of gps_ros.sim.gait (a 10-unit policy imitates
    # it from noisy rollouts; not SIMBICON's timer switch), at β 1e2 -> 1e3, the papers' ×10 over 50
    # iterations: q's action std 1/sqrt(2 β w_u) is then about 7 N m. The gait controller labels line
    # 1's policy fit (1000 L-BFGS iterations): q's own actions K_t x + k_t lack the feedback that
    # keeps the walker up (their spread over a step's samples is about 5.5 N m, norm over the 6
    # joints, against the gait's 36), and a 10-unit fit to them fell from every start where one to
    # the gait walked (dev seed 10). That fit alone walked from >= 3 of 4 test states on 5 of dev
    # seeds 10-17; with 4 rounds of π's own rollouts labelled by the gait (demonstrator_rounds) on 7
    # (refits of 300 iterations there, issue #7's notes). Dev seed 14 was the exception; 3 restarts
    # of the whole fit, keeping the cheapest on the training states, walked from 4 of 4 there. The
    # refits swing from round to round (dev seeds 10 and 12: from walking from all 4 training states
    # to falling from all 4 and back), so the cheapest of all 15 fits is kept, not of each restart's
    # last (dev seeds 10-13, 15, 16: the start walked from 3 / 4 / 2 / 4 / 4 / 4 test states against
    # 3 / 4 / 2 / 3 / 4 / 4 with each restart's last; seed 12's cheapest fit fell from 2). From there π must
    # stay a walking policy while q improves on it: each trajectory step starts from π's own rollout
    # with π linearised along it (linearize_at "start", at the rollout's states alone; linearised at
    # q's old mean, the first mean update pulled q off π's rollout and π fell by iteration 2), and
    # the policy step's targets are π plus q's change from that linearisation (policy_targets
    # "policy_correction"). With q's own conditional means as targets π's cost rose 2-5 per iteration
    # on every dev seed (fitting π to its own tangent planes over q's 0.3 rad spread flattens it;
    # 1000 L-BFGS iterations or 50 samples per step alike), and π slowed below walking speed or fell
    # within 20-45 iterations. λ_t starts at 1000 with η = 0.1: q stays near π and improves on it
    # slowly (dev seeds 11, 13, 15: test states walked 3-4 of 4 at every one of 21-30 iterations,
    # seed 13's cost 130.7 -> 124; seed 10 was noisier, 3 of 4 until iteration 21, 1-3 after); at
    # λ_t 100 or 30 q's time-indexed changes pulled π into falls within 3-13 iterations (seed 10).
    # 20 marginal samples per step and q_i for the policy step, not 5. Even so, single policy steps
    # took π from walking to falling from 1-3 training states: 13 times in 60 iterations on dev seed
    # 16, from iteration 15, as π sped up to 2.1-2.45 m in 3 s (v_x* is 0.8 m/s, the gait's 0.6 m/s).
    # So a policy step that raises π's cost on the training states by more than 5 % is undone
    # (policy_step_tolerance; dev seeds 10 and 16 then walked from all 4 training states at every one
    # of their first 38-42 iterations, test states 2-4 of 4). The cost that guard and the initial
    # fits' selection compare is π's stochastic cost (5 noisy rollouts per state, fixed noise;
    # policy_cost_samples): the test states differ from the training ones by 0.05 rad/s in the
    # velocities, so robustness to perturbations decides them, and the deterministic rollouts do
    # not measure it (dev iterations walking from all training states: 3-4 test states walked at
    # 96 % of those with a stochastic cost under 200, 78 % of those at 200-260).
    "cgps-walker": Scenario(
        "cgps-walker", "cgps", walker_task, hidden=10, conditions=4, iterations=60, test_conditions=4, init="gait",
        config=CGPSConfig(
            schedule=CostSchedule(1e2, 1e3, 50),
            initial_ddp=ILQGSettings(max_iterations=20),
            trajectory=CGPSTrajectorySettings(ddp=ILQGSettings(max_iterations=3, initial_state_cov=1e-6),
                                              covariance=_COVARIANCE),
            lambda_init=1000.0, dual_step=0.1, fit_samples=20, linearization_samples=0,
            initial_policy_fit=PolicyFitSettings(iterations=1000), demonstrator_rounds=4, initial_policy_restarts=3,
            trajectory_start="policy", linearize_at="start", policy_targets="policy_correction",
            policy_step_tolerance=0.05, policy_cost_samples=5,
        ),
    ),
}


def _quick(scenario: Scenario) -> Scenario:
    """A CI-sized version: 2 conditions, 12 steps, 2 iterations, tiny DDP and policy fits (or searches)."""
    config = scenario.config
    if isinstance(config, DirectSearchConfig):
        config = replace(config, generations=2, population=4, initial_ddp=replace(config.initial_ddp, max_iterations=3))
    else:
        config = replace(config, policy_fit=PolicyFitSettings(iterations=20), fit_samples=3, linearization_samples=3,
                         initial_ddp=ILQGSettings(max_iterations=3))
        config = replace(config, e_step=replace(config.e_step, max_iterations=2)) if isinstance(config, VGPSConfig) \
            else replace(config, trajectory=replace(config.trajectory, ddp=replace(config.trajectory.ddp, max_iterations=2)),
                         initial_policy_fit=None)
    return replace(scenario, conditions=2, iterations=2, T=12, test_conditions=min(scenario.test_conditions, 2),
                   stochastic_samples=min(scenario.stochastic_samples, 1), config=config)


def swimming_wave(task: LocomotionTask, T: int, amplitude: float = 8.0, period: float = 1.0) -> np.ndarray:
    """U [T, dU]: a travelling wave u_j = amplitude sin(2π t / period − j π/2) along the joints, where
    DDP starts the swimmer (from zero actions it stays in the symmetric local optimum of not moving)."""
    t = np.arange(T)[:, None] * task.dt
    return amplitude * np.sin(2 * np.pi * t / period - 0.5 * np.pi * np.arange(task.dU))


def trajectory_cost(task: LocomotionTask, X: np.ndarray, U: np.ndarray) -> float:
    return summed_cost(task.cost, X, U, task.state_slices)


def evaluate(task: LocomotionTask, policy: SoftplusPolicy, X0: np.ndarray, T: int, stochastic_samples: int,
             rng: np.random.Generator) -> dict[str, float]:
    """Average cost of the stochastic and deterministic policy from X0 [M, dX], mean forward distance,
    how many deterministic rollouts fell and how many walked (task.walked: no fall, forward at
    task.walk_speed or faster), no stochastic cost when stochastic_samples is 0."""
    det = list(zip(*policy_rollouts(task.dynamics, policy, X0, T)))
    sto = []
    if stochastic_samples:
        X0_repeated = np.repeat(X0, stochastic_samples, axis=0)
        noise = rng.standard_normal((len(X0_repeated), T, task.dU))
        sto = list(zip(*policy_rollouts(task.dynamics, policy, X0_repeated, T, noise)))
    figures = {
        "cost_deterministic": float(np.mean([trajectory_cost(task, X, U) for X, U in det])),
        "distance": float(np.mean([task.forward_distance(X) for X, _ in det])),
        "fell": int(sum(bool(task.fell(X)) for X, _ in det)),
        "walked": int(sum(bool(task.walked(X)) for X, _ in det)),
    }
    if sto:
        figures["cost_stochastic"] = float(np.mean([trajectory_cost(task, X, U) for X, U in sto]))
    return figures


def _run_seed(scenario: Scenario, seed: int, log: Callable[[str], None]) -> list[dict]:
    task = scenario.task()
    T = scenario.T or task.T
    rng = np.random.default_rng(seed)
    X0 = task.initial_states(scenario.conditions, rng)
    X_test = task.initial_states(scenario.test_conditions, rng) if scenario.test_conditions else None
    extra = {}
    if scenario.init == "gait":
        U_init = np.stack([demonstration(task, x)[1][:T] for x in X0])
        controller = GaitController(task)
        extra["demonstrator"] = lambda X: np.stack([controller(x) for x in X])
        extra["demonstrator_stop"] = task.fallen
    else:
        U_init = np.tile(swimming_wave(task, T), (len(X0), 1, 1))
    policy = SoftplusPolicy(task.dX, task.dU, scenario.hidden, seed=seed, inputs=task.policy_inputs)
    cls = {"vgps": VariationalGPS, "cgps": ConstrainedGPS, "direct": DirectPolicySearch}[scenario.algorithm]
    algorithm = cls(task.dynamics, task.cost, X0, policy, scenario.config, U_init=U_init, T=T,
                    state_slices=task.state_slices, seed=seed, **extra)
    ddp_cost = float(np.mean([trajectory_cost(task, r.X, r.U) for r in algorithm.initial]))
    ddp_distance = float(np.mean([task.forward_distance(r.X) for r in algorithm.initial]))
    log(f"[{scenario.name} seed {seed}] initial DDP: cost {ddp_cost:.4g}, distance {ddp_distance:.3f}")
    initial = evaluate(task, policy, X0, T, 0, rng)
    if X_test is not None:
        initial["test_walked"] = evaluate(task, policy, X_test, T, 0, rng)["walked"]
    log(f"[{scenario.name} seed {seed}] policy before iteration 1: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in initial.items()))
    rows = []
    for _ in range(scenario.iterations):
        info = algorithm.iteration()
        row = {"seed": seed, "iteration": info.k, "ddp_cost": ddp_cost, **_iteration_figures(info),
               **evaluate(task, policy, X0, T, scenario.stochastic_samples, rng), "ddp_distance": ddp_distance}
        if X_test is not None:
            row["test_walked"] = evaluate(task, policy, X_test, T, 0, rng)["walked"]
        rows.append(row)
        log(f"[{scenario.name} seed {seed}] iteration {info.k}/{scenario.iterations}: "
            + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                        if k not in ("seed", "iteration")))
    return rows


def _iteration_figures(info) -> dict[str, float]:
    """The algorithm's own per-iteration figures: GPS's β, q's cost and policy loss, or the direct
    search's evaluations and step size."""
    if isinstance(info, DirectSearchIteration):
        return {"evaluations": info.evaluations, "sigma": info.sigma}
    figures = {"beta": info.beta, "q_cost": float(np.mean(info.ddp_cost)), "policy_loss": info.policy_loss}
    if isinstance(info, CGPSIteration) and info.policy_step_accepted is not None:
        figures["policy_step_accepted"] = int(info.policy_step_accepted)
    return figures


def run_scenario(scenario: Scenario, options: BenchOptions, log: Callable[[str], None]) -> BenchReport:
    if options.quick:
        scenario = _quick(scenario)
    rows: list[dict] = []
    with torch_threads(1):
        for seed in range(options.seed, options.seed + options.seeds):
            rows.extend(_run_seed(scenario, seed, log))
    return scenario_report(scenario, rows)


def scenario_report(scenario: Scenario, rows: list[dict]) -> BenchReport:
    """The report of ``rows`` (_run_seed's, of one or more seeds): table, learning curves per seed
    and the target notes on the last iteration. Seeds run as separate processes (one
    ``--seed S --seeds 1`` each) give the same report when their rows are joined and passed here."""
    report = BenchReport(scenario.name, rows=list(rows))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for seed in sorted({r["seed"] for r in report.rows}):
        seed_rows = [r for r in report.rows if r["seed"] == seed]
        for key in ("cost_stochastic", "cost_deterministic"):
            if key in seed_rows[0]:
                curves[f"{key} seed {seed}"] = ([float(r["iteration"]) for r in seed_rows], [r[key] for r in seed_rows])
    ddp = float(np.mean([r["ddp_cost"] for r in report.rows]))
    costs = np.array([c for _, y in curves.values() for c in y], dtype=float)
    # A fallen walker costs 1e3-1e5 against a DDP cost near 1e2: a linear axis flattens every other curve.
    spread = costs.max() / costs.min() if costs.size and costs.min() > 0 else 1.0
    report.plot = PlotSpec(curves, "iteration", "average cost", {"initial DDP": ddp}, log_y=bool(spread > 100))
    last = [r for r in report.rows if r["iteration"] == scenario.iterations]
    det = float(np.mean([r["cost_deterministic"] for r in last]))
    dist = float(np.mean([r["distance"] for r in last]))
    targets = ("", "") if scenario.algorithm == "direct" else ("; target <= +10 %", " (target > 0)")
    report.notes.append(
        f"final deterministic cost {det:.4g} vs initial DDP {ddp:.4g} ({100 * (det / ddp - 1):+.1f} %{targets[0]}), "
        f"forward distance {dist:.3f}{targets[1]}"
    )
    if scenario.test_conditions:
        walked = float(np.mean([r["test_walked"] for r in last]))
        report.notes.append(f"test initial states walked (no fall, >= {scenario.task().walk_speed:g} m/s): {walked:g} of {scenario.test_conditions} (target >= 3 of 4)")
    return report


def _runner(name: str) -> Callable[[BenchOptions], BenchReport]:
    def run(options: BenchOptions) -> BenchReport:
        return run_scenario(SETTINGS[name], options, lambda line: print(line, file=sys.stderr, flush=True))

    return run


SCENARIOS: dict[str, Callable[[BenchOptions], BenchReport]] = {name: _runner(name) for name in SETTINGS}
