"""Reset-free GPS: MDGPS with trajectory-aware clustering (Montgomery et al. 2017, Alg. 2).

Every sample comes from the global policy at its own random initial state (before the
first S-step, from an initial linear-Gaussian policy). Per iteration: refit the GMM
priors, cluster the samples (hard EM over Gaussian trajectory distributions, each
with its dynamics and linearised global policy), adjust the one shared step size from
the averaged predicted and actual improvement (Sec. IV-C, see below), run one C-step
per sample with the cost expanded around that sample (its own rows of one batched
cost.expand) and its cluster's linearisations (Sec. IV-B; optionally with the
cluster's offsets re-solved at the sample, see ResetFreeConfig.centre_on_sample), then
the S-step on all samples (targets: each sample's local policy mean at its states,
weighted by its precision). The simulator is not called here: the caller draws
samples from ``sampling_policy`` and hands them to ``iteration``.

Step size: the paper computes the previous and the actual cost analytically, as the
linearised global policy's expected cost under the fitted dynamics. Per cluster those
closed loops (a policy linearised from a few samples, under dynamics fitted to them)
are often unstable over the horizon: on reacher3 that expected cost came out at
1e2-1e7 against sample costs of 5-50, and the multiplier jumped between its bounds.
Here the previous and the actual cost are the mean sample costs of the previous and
the current iteration (the global policy's real cost at random placements); the
predicted cost stays analytic: the mean expected cost of the new local policies, each
from its own sample's x_1, under its cluster's fit. So with ℓ_{k−1}, ℓ_k the mean
sample costs and ℓ̂_{k−1} the mean predicted cost,
    multiplier' = multiplier · (ℓ_{k−1} − ℓ̂_{k−1}) / (2 (ℓ_k − ℓ̂_{k−1})).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from gps_ros.algorithms.global_policy import (
    SStepHistory, check_pose_slices, check_s_step_history, local_mean_actions, pose_targets,
)
from gps_ros.algorithms.local_models import LocalModelSettings
from gps_ros.core.clustering import ClusteringConfig, ClusteringResult, TrajectoryCluster, cluster_trajectories
from gps_ros.core.costs.base import Cost, CostExpansion
from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.kl_lqr import CStepResult, kl_constrained_lqr
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorConfig, DynamicsPriorGMM, PolicyPriorConfig, PolicyPriorGMM
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import StepSizeConfig, new_step_multiplier
from gps_ros.core.traj_distribution import QuadraticCost, expected_cost
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.sstep import SStep, SStepConfig


@dataclass(frozen=True)
class ResetFreeConfig(LocalModelSettings):
    """clustering: the trajectory-aware clustering (K, EM settings, regularisers);
    kl_step: ε per time step at step multiplier 1; initial_step_mult, step_size: the
    shared multiplier and its range; c_step: η search settings; dynamics_prior /
    policy_prior: GMM prior settings (policy_prior None: ridge linearisation);
    initial_state_floor: covariance of each local problem's x_1 (the sample's own
    x_1) times I; centre_on_sample: shift the cluster's dynamics and π̄ offsets so that
    both pass through the sample's own transitions and mean actions (the cluster then
    supplies only gains, slopes and covariances); warm_start_eta: start every η search
    at the previous iteration's median η; s_step_history: how many iterations' samples
    (with their local policies' targets) the S-step trains on (1: the paper's, the
    current ones only); s_step: the supervised step's settings (with s_step.pose_state, the
    state slices a CNN global policy's pose head learns to predict)."""

    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    step_size: StepSizeConfig = field(default_factory=lambda: StepSizeConfig(min_mult=0.2, max_mult=5.0))
    dynamics_prior: DynamicsPriorConfig = field(default_factory=lambda: DynamicsPriorConfig(max_samples=40))
    policy_prior: PolicyPriorConfig | None = field(default_factory=lambda: PolicyPriorConfig(max_samples=40))
    centre_on_sample: bool = False
    warm_start_eta: bool = True
    s_step_history: int = 1
    s_step: SStepConfig = field(default_factory=SStepConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_s_step_history(self.s_step_history)
        if not self.initial_state_floor > 0:
            raise ValueError(f"initial_state_floor: expected a positive number, got {self.initial_state_floor}")


@dataclass(frozen=True)
class WallTime:
    """Seconds per phase: dynamics (GMM priors and the global policy's mean actions,
    i.e. what the linearisations need), clustering (hard EM, its per-cluster fits
    included), c_step (all per-sample C-steps), s_step."""

    dynamics_s: float
    clustering_s: float
    c_step_s: float
    s_step_s: float


@dataclass(frozen=True)
class ResetFreeResult:
    """One iteration: sample_cost (mean total cost of the samples); predicted_cost (mean
    expected cost of the new local policies under their clusters' fits, each from its
    sample's x_1);
    step_mult, epsilon: the shared step used; eta / kl: means over the C-steps;
    cluster_sizes [K]; clustering_iterations; s_step_loss: the S-step's final loss;
    failed_c_steps: samples whose C-step found no η with a positive-definite Q_uu (they
    give the S-step no targets)."""

    iteration: int
    n_samples: int
    sample_cost: float
    predicted_cost: float
    step_mult: float
    epsilon: float
    eta: float
    kl: float
    cluster_sizes: list[int]
    clustering_iterations: int
    s_step_loss: float
    failed_c_steps: int
    wall: WallTime


class ResetFreeGPS:
    """cost: the task cost; global_policy: the network policy trained by the S-steps;
    initial_policy: the linear-Gaussian policy that draws the first iteration's samples
    (it acts on the state; afterwards ``sampling_policy`` is the global policy).
    ``iteration`` expects samples whose obs are the global policy's inputs."""

    def __init__(
        self,
        config: ResetFreeConfig,
        cost: Cost,
        global_policy: GaussianPolicy,
        initial_policy: LinearGaussianPolicy,
        seed: int = 0,
    ) -> None:
        if not isinstance(cost, Cost):
            raise ValueError(f"cost: expected a Cost (with expand(samples)), got {type(cost).__name__}")
        if not isinstance(global_policy, GaussianPolicy):
            raise ValueError(f"global_policy: expected a GaussianPolicy, got {type(global_policy).__name__}")
        if not isinstance(initial_policy, LinearGaussianPolicy) or initial_policy.dU != global_policy.dU:
            raise ValueError(
                f"initial_policy: expected a LinearGaussianPolicy with dU={global_policy.dU}, got "
                + (f"dU={initial_policy.dU}" if isinstance(initial_policy, LinearGaussianPolicy) else type(initial_policy).__name__)
            )
        self.config = config
        self.cost = cost
        self._global = global_policy
        self._initial = initial_policy
        self._sstep = SStep(global_policy, config.s_step)
        self._dynamics_prior = DynamicsPriorGMM(config.dynamics_prior)
        self._policy_prior = None if config.policy_prior is None else PolicyPriorGMM(config.policy_prior)
        self._seed = seed
        self.iteration_count = 0
        self.step_mult = config.initial_step_mult
        self._eta: float | None = None
        # The previous iteration's mean sample cost and mean predicted cost.
        self._previous: tuple[float, float] | None = None
        self.last_clustering: ClusteringResult | None = None
        # One per sample of the last iteration; None where its C-step failed.
        self.local_policies: list[LinearGaussianPolicy | None] = []
        self._s_step_history = SStepHistory(config.s_step_history)

    @property
    def global_policy(self) -> GaussianPolicy:
        return self._global

    @property
    def sampling_policy(self) -> GaussianPolicy | LinearGaussianPolicy:
        """The policy the next iteration's samples must come from."""
        return self._initial if self.iteration_count == 0 else self._global

    def iteration(self, samples: SampleBatch) -> ResetFreeResult:
        """One iteration of Alg. 2 on samples drawn from ``sampling_policy`` (one per episode)."""
        self._check_samples(samples)
        cfg = self.config
        X, U = samples.X, samples.U
        M, T = samples.N, samples.T
        expansion = self.cost.expand(samples)

        start = time.perf_counter()
        U_mean, policy_cov = self._sampling_mean(samples)
        self._dynamics_prior.update(X, U)
        if self._policy_prior is not None:
            self._policy_prior.update(X, U_mean)
        dynamics_s = time.perf_counter() - start

        start = time.perf_counter()
        clustering = cluster_trajectories(
            X, U, U_mean, policy_cov, cfg.clustering, seed=self._seed + self.iteration_count,
            dynamics_prior=self._dynamics_prior, policy_prior=self._policy_prior,
        )
        clustering_s = time.perf_counter() - start

        start = time.perf_counter()
        quadratics = [_quadratic_of_sample(expansion, X, U, m) for m in range(M)]
        x1s = [InitialStateDistribution(X[m, 0], cfg.initial_state_floor * np.eye(samples.dX)) for m in range(M)]
        clusters = [clustering.clusters[k] for k in clustering.assignment]
        sample_cost = float(expansion.l.sum(axis=1).mean())
        if self._previous is not None:
            self.step_mult = new_step_multiplier(self.step_mult, *self._previous, sample_cost, cfg.step_size)
        epsilon = cfg.kl_step * T * self.step_mult
        models = [
            _centred_on_sample(c, X[m], U[m], U_mean[m]) if cfg.centre_on_sample else (c.dynamics, c.policy)
            for m, c in enumerate(clusters)
        ]
        eta_start = self._eta if cfg.warm_start_eta else None
        solved = [_c_step(dynamics, x1, q, p_bar, epsilon, cfg.c_step, eta_start)
                  for (dynamics, p_bar), x1, q in zip(models, x1s, quadratics)]
        kept = np.array([r is not None for r in solved])
        if not kept.any():
            raise RuntimeError("C-step: Q_uu was not positive definite for any η in every sample's problem")
        results = [r for r in solved if r is not None]
        predicted = float(np.mean([expected_cost(r.traj, q).sum() for r, q in zip(results, [q for q, ok in zip(quadratics, kept) if ok])]))
        c_step_s = time.perf_counter() - start

        start = time.perf_counter()
        local = [r.policy for r in results]
        K = np.stack([p.K for p in local])
        target_mu = np.einsum("mtij,mtj->mti", K, X[kept]) + np.stack([p.k for p in local])
        precision = np.stack([p.inv_cov for p in local])
        pose = pose_targets(samples, cfg.s_step.pose_state)
        s_step_loss = self._s_step_history.update(self._sstep, samples.obs[kept], target_mu, precision,
                                                  None if pose is None else pose[kept])
        self._s_step_history.end_iteration()
        s_step_s = time.perf_counter() - start

        self._eta = float(np.median([r.eta for r in results]))
        self._previous = (sample_cost, predicted)
        self.last_clustering = clustering
        self.local_policies = [None if r is None else r.policy for r in solved]
        self.iteration_count += 1
        return ResetFreeResult(
            iteration=self.iteration_count,
            n_samples=M,
            sample_cost=sample_cost,
            predicted_cost=predicted,
            step_mult=self.step_mult,
            epsilon=epsilon,
            eta=float(np.mean([r.eta for r in results])),
            kl=float(np.mean([r.kl for r in results])),
            cluster_sizes=np.bincount(clustering.assignment, minlength=cfg.clustering.n_clusters).tolist(),
            clustering_iterations=clustering.iterations,
            s_step_loss=s_step_loss,
            failed_c_steps=int((~kept).sum()),
            wall=WallTime(dynamics_s, clustering_s, c_step_s, s_step_s),
        )

    def _sampling_mean(self, samples: SampleBatch) -> tuple[np.ndarray, np.ndarray]:
        """The sampling policy's mean actions [N, T, dU] at the samples and its covariance."""
        if self.iteration_count == 0:
            return local_mean_actions(self._initial, samples.X), self._initial.cov
        return self._global.act_batch(samples.obs), self._global.covariance

    def _check_samples(self, samples: SampleBatch) -> None:
        T, dU, dX = self._initial.K.shape
        if not isinstance(samples, SampleBatch):
            raise ValueError(f"samples: expected a SampleBatch, got {type(samples).__name__}")
        if (samples.T, samples.dX, samples.dU, samples.dO) != (T, dX, dU, self._global.dO):
            raise ValueError(
                f"samples: expected T={T}, dX={dX}, dU={dU}, dO={self._global.dO}, "
                f"got T={samples.T}, dX={samples.dX}, dU={samples.dU}, dO={samples.dO}"
            )
        check_pose_slices(samples, self.config.s_step.pose_state)
        c = self.config.clustering
        if samples.N < c.n_clusters * c.min_cluster_size:
            raise ValueError(
                f"samples: expected at least n_clusters x min_cluster_size = {c.n_clusters * c.min_cluster_size} "
                f"samples, got N={samples.N}"
            )


def _c_step(dynamics, x1, cost, p_bar, epsilon, config, eta_start) -> CStepResult | None:
    """kl_constrained_lqr, or None when no η gives a positive-definite Q_uu: with random
    placements an occasional local problem is degenerate (e.g. a linearisation that is
    unstable under its dynamics), and one such sample must not stop the iteration."""
    try:
        return kl_constrained_lqr(dynamics, x1, cost, p_bar, epsilon, config, eta_start=eta_start)
    except RuntimeError:
        return None


def _centred_on_sample(
    cluster: TrajectoryCluster, X: np.ndarray, U: np.ndarray, U_mean: np.ndarray
) -> tuple[LinearGaussianDynamics, LinearGaussianPolicy]:
    """The cluster's dynamics and π̄ with offsets f_t, k̄_t re-solved at one sample (X [T, dX],
    U [T, dU], U_mean [T, dU]) so that x_{t+1} = F_t z_t + f_t and ū_t = K̄_t x_t + k̄_t hold there."""
    dyn, pol = cluster.dynamics, cluster.policy
    Z = np.concatenate([X, U], axis=1)
    f = X[1:] - np.einsum("tij,tj->ti", dyn.F[:-1], Z[:-1])
    k = U_mean - np.einsum("tij,tj->ti", pol.K, X)
    return (
        LinearGaussianDynamics(dyn.F, np.concatenate([f, f[-1:]]), dyn.W),
        LinearGaussianPolicy(pol.K, k, pol.cov),
    )


def _quadratic_of_sample(expansion: CostExpansion, X: np.ndarray, U: np.ndarray, m: int) -> QuadraticCost:
    """The cost expanded around sample m alone (Sec. IV-B), in absolute coordinates."""
    one = CostExpansion(*(a[m : m + 1] for a in (expansion.l, expansion.lx, expansion.lu, expansion.lxx, expansion.luu, expansion.lux)))
    return QuadraticCost.from_expansion(one, X[m : m + 1], U[m : m + 1])
