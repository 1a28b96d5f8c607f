"""Reset-free GPS learning benchmarks (Montgomery et al. 2017, Sec. V-B and V-D).

Every training episode starts at a fresh random placement; the global policy is
evaluated (mean actions) after each iteration on held-out placements drawn from a
fixed seed that training never uses. Targets (means over 3 seeds):

    reset-free-reacher   reacher3, random targets: >= 90 % within 0.05 m, <= 600 episodes
    reset-free-peg-2d    pr2_peg, hole in a 0.4 m square: >= 80 % inserted, <= 480 episodes
    reset-free-peg-3d    pr2_peg_3d, hole in a 0.3 m cube: >= 80 % inserted, <= 800 episodes
    vision-reacher       reacher3 from 64x64 images + joint state (spatial-softmax CNN):
                         >= 80 % within 0.05 m, <= 800 episodes

    gps-ros bench reset-free-reacher [--quick] [--seeds 3] [--json results/reset-free-reacher.json]

With --json, a learning-curve PNG is written next to the JSON; progress on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

# gps_ros.agents first: it makes MUJOCO_GL default to egl before mujoco loads.
from gps_ros.agents import MujocoAgent  # isort: skip
import numpy as np

from gps_ros.algorithms.global_policy import mlp_global_policy
from gps_ros.algorithms.reset_free import ResetFreeConfig, ResetFreeGPS, ResetFreeResult
from gps_ros.bench.report import BenchOptions, BenchReport, PlotSpec
from gps_ros.core.clustering import ClusteringConfig
from gps_ros.core.costs import ActionCost, CostSum, build_cost
from gps_ros.core.linear_gaussian import init_pd
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import StepSizeConfig
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.threads import torch_threads

HELDOUT_SEED = 987_654  # training placements come from SeedSequence([seed, iteration]); never this one


@dataclass(frozen=True)
class Scenario:
    """task; samples_per_iteration (one episode each); max_episodes; success_distance
    (None: the task's own success test); target_rate: held-out success the paper's
    figure reaches within max_episodes; n_heldout; kp/kd/noise_variance: the initial PD
    policy around the task's initial pose; extra_action_weight: a torque penalty added
    to the task's cost (keeps the LQR's actions inside the torque limits, which the
    linear models do not know about); cost: a build_cost mapping replacing the task's
    cost (None: the task's); vision: CNN on images + joint state; config: the
    algorithm's settings."""

    name: str
    task: str
    samples_per_iteration: int
    max_episodes: int
    success_distance: float | None
    target_rate: float
    n_heldout: int = 20
    kp: float = 1.0
    kd: float = 0.1
    noise_variance: float = 0.1
    extra_action_weight: float = 0.0
    cost: dict | None = None
    vision: bool = False
    config: ResetFreeConfig = field(default_factory=ResetFreeConfig)


# Measured on reacher3 (one seed, 600 episodes): the adaptive step multiplier, fed by
# sample costs of different random placements, swung between its bounds and learned
# slower than a fixed one; centring each local problem on its sample (dynamics and π̄
# offsets through the sample) and a torque penalty that keeps the LQR inside the 0.5 N m
# limits both raised held-out success, and training the S-step on the last 3
# iterations' samples instead of the current ones only took it from 0.5-0.6 to 0.9
# (the network no longer forgets the placements of earlier iterations). Hence these settings.
# On dev seeds 10-15 and 40 validation targets (not the held-out set) they reach 93 % at 600
# episodes; the last 8 iterations' samples instead of 3 reached 92 %, and kl_step 3.0 82 % (seeds 10-13).
# Runs are chaotic in floating-point rounding, so figures move between machines: on the machine of
# the committed results, the same dev seeds reach 87 % (88/65/99/94/98/80) on 100 validation targets
# with kl_step 1.5.
# The held-out set has 100 placements: with 20, each target is 5 % of a seed's rate, and the 20
# drawn hold 4 targets within 30 degrees of straight behind the arm's start (3.3 expected), where
# the policy fails most (it folds the arm toward the base instead of swinging round).
# On this machine, dev seeds 10-21 and those 100 validation targets: kl_step 1.5 84 %, 1.0 89 %, the last
# 5 iterations' samples 88 %, both 88 %; 4000 S-step iterations and 6 clusters did no better than
# 1.5 on seeds 10-15 (85 and 84 % against 87 %). Hence kl_step 1.0.
_REACHER = ResetFreeConfig(
    clustering=ClusteringConfig(n_clusters=4), kl_step=1.0, initial_step_mult=1.0,
    step_size=StepSizeConfig(min_mult=1.0, max_mult=1.0), centre_on_sample=True, s_step_history=3,
)
# pr2_peg with its task cost (the MDGPS paper's peg cost) and initial noise variance 4 (as in
# mdgps_scenarios; with a quadratic-ramp cost the peg stalled on the hole's rim: 30 % held-out
# success at 480 episodes, mean distance 0.12 m), one seed:
# kl_step 0.5 reached 100 % held-out success at 400 episodes, kl_step 1.0 at 240.
_PEG = replace(_REACHER, kl_step=1.0)
# The spatial-softmax CNN's Adam step is what a CPU run pays for: measured on this 2-core
# machine (one torch thread, three runs sharing the cores), 58 ms at batch 64 with the second
# conv layer at stride 1 (a 32x32 map), 30 ms at stride 2, 11 ms at stride 2 with batch 32:
# hence VISION_CONV, batch 32 and 1000 warm-started steps per iteration.
# The feature points also learn to predict the target's and the fingertip's positions (the pose
# regression of Levine et al., JMLR 2016): the target is a 3-pixel dot in the 64x64 image, which
# the policy loss alone locates slowly. On the 3 reported seeds it raised the mean held-out success
# at 400 / 600 episodes from 27 / 42 % to 42 / 57 %, but not at 800 (57 % with and without; the run
# without it on an earlier machine of the same kind).
# What limits the CNN, measured on dev seeds 10-12 with 100 validation targets from another seed (not
# the reported seeds or held-out set), and by cloning a trained state policy (92 %) from its own
# rollouts with these S-step settings:
# - Not the feature points' precision: the pose head alone, trained on 60 placements, locates new ones to 8 mm.
# - Dead channels, now fixed: with a ReLU on the last conv layer 9 of 16 channels were zero at every pixel
#   (uniform softmax, no gradient) even after 3000 pose-regression steps. Cloned from 60 rollouts, the
#   CNN reached 17 % (loss 9.7 per row) at 10000 steps with it, 40 % (7.3) without it.
# - Placements, not fitting: cloned from 60 rollouts, the CNN (with pose pretraining, 14000 steps) fitted
#   as closely as an MLP on the full state (loss 3.1 against 3.2) yet reached 48 % against 87 %; an MLP on
#   joint state + true target reached 64 % from 60 placements and 81 % from 160 (128x3 units: 76 / 92 %).
#   Hence the S-step on the last 8 iterations' samples (160 placements) instead of 3.
# In GPS, mean validation success at 800 episodes (per seed): ReLU network 2000 steps per iteration 62 %
# (74 / 62 / 50), ReLU and 3000 pose-pretraining steps 55 %, no ReLU 57 % (65 / 51 / 56), no ReLU with
# 8 iterations' samples 67 % (67 / 86 / 50; at 560 episodes 55 % against 56 %). Slower: Adam at 3e-3
# (22 / 37 / 20 % against 54 / 53 / 25 % at ~360 episodes), a 128x3 head (49 % against 55 % at 560),
# 16 iterations' samples (53 % at 560; neither run to 800). All of these at kl_step 1.5; the reacher's
# kl_step 1.0 (as reset-free-reacher, which it helped there too) with 8 iterations' samples: 74 %
# (72 / 74 / 75), ahead from 460 episodes on (57 % against 49 %). Hence _REACHER's step.
# On the reported seeds at kl_step 1.5: 64 / 60 / 78 % with the last 3 iterations' samples,
# 76 / 63 / 84 % (74 %) with the last 8; at kl_step 1.0 with the last 8: 89 / 84 / 81 % (84.7 %).
_VISION = replace(_REACHER, s_step_history=8, s_step=replace(
    _REACHER.s_step, iterations=1000, batch_size=32, pose_weight=1.0, pose_state=("target_position", "ee_points")))
VISION_CONV = {"conv_channels": (16, 16), "conv_kernels": (5, 5), "conv_strides": (2, 2), "pose_dim": 4}

SETTINGS = {
    s.name: s
    for s in (
        Scenario("reset-free-reacher", "reacher3", 20, 600, 0.05, 0.9, n_heldout=100, extra_action_weight=0.3,
                 config=_REACHER),
        Scenario("reset-free-peg-2d", "pr2_peg", 20, 480, None, 0.8, kp=20.0, kd=5.0, noise_variance=4.0,
                 config=_PEG),
        Scenario("reset-free-peg-3d", "pr2_peg_3d", 20, 800, None, 0.8, kp=20.0, kd=5.0, noise_variance=4.0,
                 config=_PEG),
        Scenario("vision-reacher", "reacher3", 20, 800, 0.05, 0.8, n_heldout=100, extra_action_weight=0.3, vision=True,
                 config=_VISION),
    )
}


class _ObsSelector:
    """Runs the global policy on a subset of the agent's observation (vision: joint state + image)."""

    def __init__(self, policy: GaussianPolicy, index: np.ndarray) -> None:
        self.policy, self.index = policy, index

    def act(self, x, obs, t, noise):
        return self.policy.act(x, obs[self.index], t, noise)


def run_scenario(scenario: Scenario, options: BenchOptions, log: Callable[[str], None]) -> BenchReport:
    rows: list[dict] = []
    with torch_threads(1):  # the S-step and the global policy's act calls (policies.threads)
        for seed in range(options.seed, options.seed + options.seeds):
            rows.extend(_run_seed(scenario, options.quick, seed, log))
    return scenario_report(scenario, rows, options.quick)


def scenario_report(scenario: Scenario, rows: list[dict], quick: bool = False) -> BenchReport:
    """The report (learning curves, final-rate note) of per-iteration rows of any seeds; also
    joins the rows of seeds run in separate processes (``--seed S --seeds 1``)."""
    report = BenchReport(scenario.name, rows=list(rows))
    report.plot = PlotSpec(learning_curves(report), "episodes", "held-out success rate",
                           {f"target {scenario.target_rate:.0%}": scenario.target_rate})
    finals = [r for r in report.rows if r["iteration"] == max(q["iteration"] for q in report.rows if q["seed"] == r["seed"])]
    mean_rate = float(np.mean([r["held_out_success"] for r in finals]))
    report.notes.append(
        f"final held-out success (mean over {len(finals)} seed(s)): {mean_rate:.3f} at "
        f"{int(np.mean([r['samples'] for r in finals]))} episodes; target >= {scenario.target_rate} within "
        f"{scenario.max_episodes} episodes (means over 3 seeds){' [quick run: not comparable]' if quick else ''}"
    )
    return report


def learning_curves(report: BenchReport) -> dict[str, tuple[list[float], list[float]]]:
    """Held-out success against episodes, one curve per seed."""
    seeds = sorted({r["seed"] for r in report.rows})
    return {
        f"seed {s}": ([r["samples"] for r in report.rows if r["seed"] == s],
                      [r["held_out_success"] for r in report.rows if r["seed"] == s])
        for s in seeds
    }


def _run_seed(scenario: Scenario, quick: bool, seed: int, log: Callable[[str], None]) -> list[dict]:
    agent = MujocoAgent(scenario.task)
    task = agent.task
    sl = task.state_slices
    n_per_iter = 8 if quick else scenario.samples_per_iteration
    max_episodes = 2 * n_per_iter if quick else scenario.max_episodes
    n_heldout = 4 if quick else scenario.n_heldout
    config = scenario.config
    if quick:
        config = replace(config, clustering=replace(config.clustering, n_clusters=2),
                         s_step=replace(config.s_step, iterations=20))
    initial = init_pd(agent.T, agent.dX, agent.dU, sl["joint_angles"], sl["joint_velocities"],
                      task.config.initial_qpos, scenario.kp, scenario.kd, scenario.noise_variance)
    global_policy, obs_index = _global_policy(agent, scenario.vision, seed)
    cost = task.cost() if scenario.cost is None else build_cost(scenario.cost, name=f"{scenario.name}.cost")
    if scenario.extra_action_weight > 0:
        cost = CostSum([cost, ActionCost(weights=np.full(agent.dU, scenario.extra_action_weight))])
    algorithm = ResetFreeGPS(config, cost, global_policy, initial, seed=seed)
    runner = global_policy if obs_index is None else _ObsSelector(global_policy, obs_index)
    threshold = task.config.success.threshold if scenario.success_distance is None else scenario.success_distance
    rows: list[dict] = []
    episodes, iteration = 0, 0
    start = time.perf_counter()
    while episodes + n_per_iter <= max_episodes:
        policy = algorithm.sampling_policy if algorithm.iteration_count == 0 else runner
        samples = agent.sample_many(policy, [None] * n_per_iter, seed=_training_seed(seed, iteration),
                                    with_images=scenario.vision)
        episodes += n_per_iter
        iteration += 1
        result = algorithm.iteration(_policy_inputs(samples, obs_index))
        distance = _heldout_distances(agent, runner, n_heldout, scenario.vision)
        rows.append(_row(seed, episodes, result, distance, threshold))
        elapsed = time.perf_counter() - start
        eta = elapsed / episodes * (max_episodes - episodes)
        log(f"[{scenario.name} seed {seed}] it {iteration} episodes {episodes}/{max_episodes} "
            f"cost {result.sample_cost:.2f} step {result.step_mult:.2f} clusters {result.cluster_sizes} "
            f"held-out success {rows[-1]['held_out_success']:.2f} dist {rows[-1]['held_out_dist_mean']:.3f} "
            f"[dyn {result.wall.dynamics_s:.1f}s clu {result.wall.clustering_s:.1f}s "
            f"C {result.wall.c_step_s:.1f}s S {result.wall.s_step_s:.1f}s] ({elapsed:.0f}s, ETA {eta:.0f}s)")
    agent.close()
    return rows


def _training_seed(seed: int, iteration: int) -> int:
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


def _global_policy(agent: MujocoAgent, vision: bool, seed: int) -> tuple[GaussianPolicy, np.ndarray | None]:
    """The MLP on the task's obs, or (vision) the spatial-softmax CNN on [joint state, image]."""
    if not vision:
        return mlp_global_policy(agent.dO, agent.dU, (42, 42), seed), None
    dO, obs_slices = agent.obs_layout(with_images=True)
    low = np.r_[obs_slices["joint_angles"], obs_slices["joint_velocities"]]
    image = np.r_[obs_slices["image"]]
    index = np.concatenate([low, image])
    spec = agent.render_spec
    arch = PolicyArchitecture("cnn", len(index), agent.dU, hidden_sizes=(42, 42), **VISION_CONV,
                              image_shape=(3, spec.height, spec.width), image_slice=(len(low), len(index)))
    return GaussianPolicy(arch, seed=seed), index


def _policy_inputs(samples: SampleBatch, obs_index: np.ndarray | None) -> SampleBatch:
    if obs_index is None:
        return samples
    return SampleBatch(samples.X, samples.U, samples.obs[:, :, obs_index], samples.noise, samples.state_slices)


def _heldout_distances(agent: MujocoAgent, policy, n: int, with_images: bool) -> np.ndarray:
    """Final distances [n] of the policy's mean actions on the held-out placements."""
    rng = np.random.default_rng(HELDOUT_SEED)
    conditions = [agent.task.random_condition(rng) for _ in range(n)]
    samples = agent.sample_many(policy, conditions, noise=np.zeros((n, agent.T, agent.dU)), seed=HELDOUT_SEED,
                                with_images=with_images)
    return agent.task.final_distance(samples.X)


def _row(seed: int, episodes: int, result: ResetFreeResult, distance: np.ndarray, threshold: float) -> dict:
    return {
        "seed": seed, "iteration": result.iteration, "samples": episodes,
        "sample_cost": result.sample_cost, "step_mult": result.step_mult,
        "held_out_dist_mean": float(distance.mean()), "held_out_dist_std": float(distance.std()),
        "held_out_success": float(np.mean(distance < threshold)),
        "dynamics_s": result.wall.dynamics_s, "clustering_s": result.wall.clustering_s,
        "c_step_s": result.wall.c_step_s, "s_step_s": result.wall.s_step_s,
    }


def _runner(name: str) -> Callable[[BenchOptions], BenchReport]:
    return lambda options: run_scenario(SETTINGS[name], options, lambda line: print(line, file=sys.stderr, flush=True))


SCENARIOS: dict[str, Callable[[BenchOptions], BenchReport]] = {name: _runner(name) for name in SETTINGS}
