from dataclasses import replace

import numpy as np
import pytest

from gps_ros.algorithms.badmm import BADMM, BADMMConfig, badmm_c_step, dual_step
from gps_ros.algorithms.global_policy import mlp_global_policy
from gps_ros.algorithms.local_models import fit_local_model
from gps_ros.core.kl import policy_kl_per_step
from gps_ros.core.kl_lqr import kl_constrained_lqr
from gps_ros.core.linear_gaussian import LinearGaussianPolicy, init_pd
from gps_ros.core.linear_system import QuadraticStateCost, point_mass
from gps_ros.core.noise import draw_noise
from gps_ros.core.priors import DynamicsPriorConfig
from gps_ros.core.samples import SampleBatch
from gps_ros.policies.sstep import SStepConfig

T = 30
STARTS = np.array([[1.0, -0.5, 0.0, 0.0], [-0.8, 0.6, 0.0, 0.0]])
COST = QuadraticStateCost(np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(2), np.zeros(4))
PD = init_pd(T, 4, 2, slice(0, 2), slice(2, 4), np.zeros(2), 1.0, 1.0, 1.0)


def _config(**kw) -> BADMMConfig:
    prior = DynamicsPriorConfig(max_clusters=2, strength=10.0)
    base = BADMMConfig(kl_step=1.0, inner_iterations=2, dynamics_prior=prior, policy_prior=prior,
                       s_step=SStepConfig(iterations=200, batch_size=64, lr=3e-3))
    return replace(base, **kw)


def _samples(system, policies, rng, n=5):
    return [system.rollout(p, np.tile(x0, (n, 1)), draw_noise(rng, n, T, 2), rng) for x0, p in zip(STARTS, policies)]


def _model(rng):
    system = point_mass(T=T)
    batch = _samples(system, [PD], rng, n=10)[0]
    return fit_local_model(batch, COST.expand(batch), None, 1e-6, 1e-6)


def test_c_step_without_multipliers_is_the_kl_constrained_lqr():
    model = _model(np.random.default_rng(0))
    result = badmm_c_step(model, PD, PD, np.zeros((T, 2)), np.zeros(T), 10.0)
    reference = kl_constrained_lqr(model.dynamics, model.x1, model.cost, PD, 10.0)
    assert result.kl == pytest.approx(10.0, rel=0.1)
    # Both searches stop anywhere within the tolerance band; the policies agree up to that.
    assert abs(result.eta - reference.eta) / reference.eta < 0.3
    np.testing.assert_allclose(result.policy.K, reference.policy.K, atol=0.2 * np.abs(reference.policy.K).max())


def test_c_step_weights_pull_towards_the_global_policy_and_lambda_shifts_the_action():
    model = _model(np.random.default_rng(1))
    pi_bar = LinearGaussianPolicy(PD.K, PD.k + 0.5, 0.5 * PD.cov)
    lam = np.zeros((T, 2))
    kls = []
    for nu in (0.0, 1.0, 100.0):
        result = badmm_c_step(model, PD, pi_bar, lam, np.full(T, nu), 50.0)
        kls.append(policy_kl_per_step(result.policy, pi_bar, result.traj).sum())
    assert kls[0] > kls[1] > kls[2]
    # −λᵀu rewards a larger first action entry: the mean action there must grow.
    base = badmm_c_step(model, PD, pi_bar, lam, np.full(T, 1.0), 50.0)
    lam[:, 0] = 5.0
    shifted = badmm_c_step(model, PD, pi_bar, lam, np.full(T, 1.0), 50.0)
    assert shifted.traj.mu[:, 4].mean() > base.traj.mu[:, 4].mean()


def test_dual_step_moves_lambda_along_the_local_global_mismatch():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((T, 2, 2))
    local = LinearGaussianPolicy(rng.standard_normal((T, 2, 4)), rng.standard_normal((T, 2)),
                                 A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(2))
    X = rng.standard_normal((6, T, 4))
    global_mean = rng.standard_normal((6, T, 2))
    lam, nu = rng.standard_normal((T, 2)), rng.uniform(0.5, 2.0, T)
    new = dual_step(lam, nu, local, X, global_mean, rate=0.3)
    for t in range(T):
        mismatch = np.mean([global_mean[j, t] - (local.K[t] @ X[j, t] + local.k[t]) for j in range(6)], axis=0)
        expected = 0.3 * nu[t] * np.linalg.solve(local.cov[t], mismatch)
        np.testing.assert_allclose(new[t] - lam[t], expected, rtol=1e-10)
        # C_t⁻¹ is positive definite: the step has a positive component along the mismatch.
        assert (new[t] - lam[t]) @ mismatch > 0


def test_badmm_improves_the_global_policy_on_a_point_mass():
    rng = np.random.default_rng(3)
    system = point_mass(T=T)
    algorithm = BADMM(_config(), COST, [PD, PD], mlp_global_policy(4, 2, (20, 20), seed=0))
    initial = COST.expand(system.rollout(PD, STARTS, np.zeros((2, T, 2)), rng)).l.sum(axis=1).mean()
    for _ in range(3):
        result = algorithm.iteration(_samples(system, algorithm.sampling_policies(), rng))
    X = np.empty((2, T, 4))
    U = np.empty((2, T, 2))
    x = STARTS
    for t in range(T):
        X[:, t] = x
        U[:, t] = algorithm.global_policy.act_batch(x[:, None, :])[:, 0]
        x = x @ system.A.T + U[:, t] @ system.B.T + system.c
    final = COST.expand(SampleBatch(X, U)).l.sum(axis=1).mean()
    assert final < 0.7 * initial, (initial, final)
    assert all(c.mean_weight >= algorithm.config.initial_policy_weight for c in result.conditions)


def test_bad_input_names_the_field_and_leaves_state_alone():
    rng = np.random.default_rng(4)
    system = point_mass(T=T)
    algorithm = BADMM(_config(), COST, [PD, PD], mlp_global_policy(4, 2, seed=0))
    samples = _samples(system, algorithm.local_policies, rng)
    with pytest.raises(ValueError, match="samples_per_condition: expected 2 batches"):
        algorithm.iteration(samples[:1])
    assert algorithm.local_policies == [PD, PD] and algorithm.iteration_count == 0
    with pytest.raises(ValueError, match="inner_iterations: expected an integer >= 1"):
        _config(inner_iterations=0)
    with pytest.raises(ValueError, match="weight_step_schedule: expected a non-empty sequence"):
        _config(weight_step_schedule=(0.1, -1.0))
    with pytest.raises(ValueError, match="initial_policy_weight: expected a number >= min_policy_weight"):
        _config(initial_policy_weight=0.0)
    model = _model(rng)
    with pytest.raises(ValueError, match=r"lambda_k: expected shape \[30, 2\]"):
        badmm_c_step(model, PD, PD, np.zeros((T, 3)), np.zeros(T), 1.0)
    with pytest.raises(ValueError, match="nu: expected values >= 0"):
        badmm_c_step(model, PD, PD, np.zeros((T, 2)), -np.ones(T), 1.0)
