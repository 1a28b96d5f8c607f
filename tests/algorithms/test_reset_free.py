"""Reset-free GPS on a small linear task with random initial states (no simulator)."""

import numpy as np
import pytest

from gps_ros.algorithms.reset_free import ResetFreeConfig, ResetFreeGPS
from gps_ros.core.clustering import ClusteringConfig
from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.samples import SampleBatch
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.sstep import SStepConfig


T, dX, dU, dt = 20, 4, 2, 0.1
A = np.block([[np.eye(2), dt * np.eye(2)], [np.zeros((2, 2)), np.eye(2)]])  # 2-D point mass
B = np.vstack([np.zeros((2, 2)), dt * np.eye(2)])
Q, R = np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(2)


class QuadraticStateCost:
    """½ xᵀQx + ½ uᵀRu at every step."""

    def expand(self, samples: SampleBatch) -> CostExpansion:
        X, U = samples.X, samples.U
        N = samples.N
        l = 0.5 * np.einsum("nti,ij,ntj->nt", X, Q, X) + 0.5 * np.einsum("nti,ij,ntj->nt", U, R, U)
        return CostExpansion(
            l, X @ Q, U @ R, np.broadcast_to(Q, (N, T, dX, dX)).copy(),
            np.broadcast_to(R, (N, T, dU, dU)).copy(), np.zeros((N, T, dU, dX)),
        )


def _rollout(policy, x0: np.ndarray, rng: np.random.Generator | None) -> SampleBatch:
    """Roll out from x0 [N, dX]; rng None: mean actions."""
    N = len(x0)
    X, U = np.zeros((N, T, dX)), np.zeros((N, T, dU))
    x = x0.copy()
    for t in range(T):
        X[:, t] = x
        noise = None if rng is None else rng.standard_normal((N, dU))
        if isinstance(policy, LinearGaussianPolicy):
            u = policy.act_batch(x, t, noise)
        else:
            u = policy.act_batch(x[:, None])[:, 0]
            if noise is not None:
                u = u + noise @ policy.chol_covariance.T
        U[:, t] = u
        x = x @ A.T + u @ B.T + 0.001 * (rng.standard_normal((N, dX)) if rng is not None else 0)
    return SampleBatch(X, U)


def _true_cost(batch: SampleBatch) -> float:
    return float(QuadraticStateCost().expand(batch).l.sum(axis=1).mean())


def _lqr_optimal_cost(x0: np.ndarray) -> float:
    """Finite-horizon discrete LQR (Riccati recursion) optimum for the deterministic system."""
    P = Q.copy()
    for _ in range(T - 1):
        G = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ (A - B @ G)
    # The last action only costs (x_T is not reached), which the recursion above accounts for.
    return float(np.mean(0.5 * np.einsum("ni,ij,nj->n", x0, P, x0)))


def _initial_states(rng, n):
    return np.concatenate([rng.uniform(-1, 1, (n, 2)), np.zeros((n, 2))], axis=1)


def _algorithm(seed=0, **overrides):
    arch = PolicyArchitecture("mlp", dX, dU, hidden_sizes=(32, 32))
    policy = GaussianPolicy(arch, seed=seed, device="cpu")
    initial = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(0.5 * np.eye(dU), (T, 1, 1)))
    config = ResetFreeConfig(**{
        "clustering": ClusteringConfig(n_clusters=2), "kl_step": 0.5,
        "s_step": SStepConfig(iterations=300, batch_size=64, lr=3e-3), **overrides,
    })
    return ResetFreeGPS(config, QuadraticStateCost(), policy, initial, seed=seed)


@pytest.mark.parametrize("centre_on_sample", [False, True])
def test_improves_cost_of_small_task(centre_on_sample):
    rng = np.random.default_rng(0)
    algorithm = _algorithm(centre_on_sample=centre_on_sample)
    test_x0 = _initial_states(np.random.default_rng(123), 50)
    before = _true_cost(_rollout(algorithm.sampling_policy, test_x0, None))
    for _ in range(6):
        samples = _rollout(algorithm.sampling_policy, _initial_states(rng, 16), rng)
        result = algorithm.iteration(samples)
    after = _true_cost(_rollout(algorithm.global_policy, test_x0, None))
    optimum = _lqr_optimal_cost(test_x0)
    assert after < 0.6 * before
    assert after < 1.5 * optimum
    assert sum(result.cluster_sizes) == 16
    assert result.wall.s_step_s > 0


def test_centred_models_pass_through_the_sample():
    """Centring keeps the cluster's gains and slopes and re-solves the offsets at the sample."""
    from gps_ros.algorithms.reset_free import _centred_on_sample
    from gps_ros.core.clustering import ClusteringConfig, cluster_trajectories

    rng = np.random.default_rng(2)
    samples = _rollout(_algorithm().sampling_policy, _initial_states(rng, 8), rng)
    U_mean = samples.U - 0.1  # any mean actions: only consistency at the sample is checked
    cluster = cluster_trajectories(samples.X, samples.U, U_mean, 0.5 * np.eye(dU), ClusteringConfig(n_clusters=1)).clusters[0]
    m = 3
    dynamics, p_bar = _centred_on_sample(cluster, samples.X[m], samples.U[m], U_mean[m])
    Z = np.concatenate([samples.X[m], samples.U[m]], axis=1)
    np.testing.assert_allclose(np.einsum("tij,tj->ti", dynamics.F[:-1], Z[:-1]) + dynamics.f[:-1], samples.X[m, 1:], atol=1e-10)
    np.testing.assert_allclose(np.einsum("tij,tj->ti", p_bar.K, samples.X[m]) + p_bar.k, U_mean[m], atol=1e-10)
    np.testing.assert_array_equal(dynamics.F, cluster.dynamics.F)
    np.testing.assert_array_equal(p_bar.K, cluster.policy.K)


def test_failed_c_step_drops_only_that_sample(monkeypatch):
    import gps_ros.algorithms.reset_free as reset_free

    real = reset_free.kl_constrained_lqr
    calls = []

    def fail_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("C-step: Q_uu not positive definite")
        return real(*args, **kwargs)

    monkeypatch.setattr(reset_free, "kl_constrained_lqr", fail_third)
    algorithm = _algorithm()
    rng = np.random.default_rng(3)
    result = algorithm.iteration(_rollout(algorithm.sampling_policy, _initial_states(rng, 8), rng))
    assert result.failed_c_steps == 1
    assert [p is None for p in algorithm.local_policies] == [False, False, True] + [False] * 5


def test_bad_samples_name_the_field():
    algorithm = _algorithm()
    rng = np.random.default_rng(1)
    good = _rollout(algorithm.sampling_policy, _initial_states(rng, 8), rng)
    with pytest.raises(ValueError, match="^samples: expected T=20"):
        algorithm.iteration(SampleBatch(good.X[:, :10], good.U[:, :10]))
    with pytest.raises(ValueError, match="^samples: expected at least"):
        algorithm.iteration(good[:3])
    assert algorithm.iteration_count == 0


def test_bad_config_and_arguments_name_the_field():
    with pytest.raises(ValueError, match="^kl_step:"):
        ResetFreeConfig(kl_step=0.0)
    with pytest.raises(ValueError, match="^initial_step_mult:"):
        ResetFreeConfig(initial_step_mult=100.0)
    arch = PolicyArchitecture("mlp", dX, dU)
    bad_initial = LinearGaussianPolicy(np.zeros((T, 3, dX)), np.zeros((T, 3)), np.tile(np.eye(3), (T, 1, 1)))
    with pytest.raises(ValueError, match="^initial_policy:"):
        ResetFreeGPS(ResetFreeConfig(), QuadraticStateCost(), GaussianPolicy(arch, device="cpu"), bad_initial)
    with pytest.raises(ValueError, match="^cost:"):
        ResetFreeGPS(ResetFreeConfig(), object(), GaussianPolicy(arch, device="cpu"), bad_initial)


def test_pose_state_of_every_kept_iteration_reaches_the_s_step(record_s_step):
    calls = record_s_step("gps_ros.algorithms.reset_free.SStep")
    algorithm = _algorithm(s_step_history=2, s_step=SStepConfig(iterations=1, pose_weight=1.0, pose_state=("velocity",)))
    rng = np.random.default_rng(3)
    slices = {"position": slice(0, 2), "velocity": slice(2, 4)}
    batches = []
    for _ in range(2):
        rollout = _rollout(algorithm.sampling_policy, _initial_states(rng, 8), rng)
        batches.append(SampleBatch(rollout.X, rollout.U, state_slices=slices))
        algorithm.iteration(batches[-1])
    np.testing.assert_array_equal(calls[0][1], batches[0].X[:, :, 2:4])
    np.testing.assert_array_equal(calls[1][1], np.concatenate([b.X[:, :, 2:4] for b in batches]))
    np.testing.assert_array_equal(calls[1][0], np.concatenate([b.obs for b in batches]))


def test_pose_state_missing_from_the_samples_is_refused_before_anything_changes():
    arch = PolicyArchitecture("cnn", dX + 4, dU, image_shape=(1, 2, 2), image_slice=(dX, dX + 4), pose_dim=2)
    initial = LinearGaussianPolicy(np.zeros((T, dU, dX)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    algorithm = ResetFreeGPS(
        ResetFreeConfig(clustering=ClusteringConfig(n_clusters=2), s_step=SStepConfig(pose_weight=1.0, pose_state=("target",))),
        QuadraticStateCost(), GaussianPolicy(arch, device="cpu"), initial,
    )
    rng = np.random.default_rng(4)
    rollout = _rollout(initial, _initial_states(rng, 8), rng)
    samples = SampleBatch(rollout.X, rollout.U, np.zeros((8, T, dX + 4)), state_slices={"position": slice(0, 2)})
    with pytest.raises(ValueError, match=r"^pose_state: slices \['target'\] are not in the samples' state; have \['position'\]"):
        algorithm.iteration(samples)
    assert algorithm.iteration_count == 0
