import copy
from dataclasses import replace

import numpy as np
import pytest

from gps_ros.algorithms.global_policy import mlp_global_policy
from gps_ros.algorithms.mdgps import MDGPS, MDGPSConfig
from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.dynamics_fit import fit_dynamics, fit_initial_state, fit_linearized_policy
from gps_ros.core.linear_gaussian import init_pd
from gps_ros.core.linear_system import QuadraticStateCost, point_mass
from gps_ros.core.noise import draw_noise
from gps_ros.core.priors import DynamicsPriorConfig
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import StepSizeConfig
from gps_ros.policies.sstep import SStepConfig

T = 30
STARTS = np.array([[1.0, -0.5, 0.0, 0.0], [-0.8, 0.6, 0.0, 0.0]])
COST = QuadraticStateCost(np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(2), np.zeros(4))


def _config(**kw) -> MDGPSConfig:
    # A linear system is one global linear model: two mixture components and a firm prior suffice.
    base = MDGPSConfig(
        kl_step=1.0,
        step_size=StepSizeConfig(min_mult=0.5, max_mult=3.0),
        dynamics_prior=DynamicsPriorConfig(max_clusters=2, strength=10.0),
        policy_prior=DynamicsPriorConfig(max_clusters=2, strength=10.0),
        s_step=SStepConfig(iterations=150, batch_size=64, lr=3e-3),
    )
    return replace(base, **kw)


def _setup(**kw):
    system = point_mass(T=T)
    policy = init_pd(T, 4, 2, slice(0, 2), slice(2, 4), np.zeros(2), 1.0, 1.0, 1.0)
    algorithm = MDGPS(_config(**kw), COST, [policy] * len(STARTS), mlp_global_policy(4, 2, (20, 20), seed=0))
    return system, algorithm


def _sample(system, algorithm, rng, n=5):
    batches = []
    for x0, policy in zip(STARTS, algorithm.sampling_policies()):
        if hasattr(policy, "K"):
            batches.append(system.rollout(policy, np.tile(x0, (n, 1)), draw_noise(rng, n, T, 2), rng))
        else:
            batches.append(_rollout_global(system, policy, np.tile(x0, (n, 1)), rng, noise=True))
    return batches


def _rollout_global(system, policy, x0, rng, noise=False):
    """The neural policy on the true linear system; mean actions unless noise."""
    N = len(x0)
    X, U = np.empty((N, T, 4)), np.empty((N, T, 2))
    x = x0
    for t in range(T):
        X[:, t] = x
        mu = policy.act_batch(x[:, None, :])[:, 0]
        U[:, t] = mu + (rng.standard_normal((N, 2)) @ policy.chol_covariance.T if noise else 0.0)
        x = x @ system.A.T + U[:, t] @ system.B.T + system.c
    return SampleBatch(X, U)


def _true_cost(batch):
    return float(COST.expand(batch).l.sum(axis=1).mean())


def test_global_policy_cost_improves_on_a_point_mass():
    rng = np.random.default_rng(0)
    system, algorithm = _setup(s_step=SStepConfig(iterations=400, batch_size=64, lr=3e-3))
    initial = _true_cost(system.rollout(algorithm.local_policies[0], STARTS, np.zeros((2, T, 2)), rng))
    for _ in range(4):
        result = algorithm.iteration(_sample(system, algorithm, rng))
    final = _true_cost(_rollout_global(system, algorithm.global_policy, STARTS, rng))
    assert final < 0.7 * initial, (initial, final)
    assert result.iteration == 4 and result.times.s_step_s > 0


def test_c_step_is_constrained_against_the_linearised_global_policy():
    rng = np.random.default_rng(1)
    system, algorithm = _setup(dynamics_prior=None, policy_prior=None, dynamics_regularization=1e-6)
    algorithm.iteration(_sample(system, algorithm, rng))
    samples = _sample(system, algorithm, rng, n=8)
    before = copy.deepcopy(algorithm.global_policy)
    result = algorithm.iteration(samples)
    for m, (batch, report) in enumerate(zip(samples, result.conditions)):
        # π̄ and the dynamics rebuilt from the samples and the pre-iteration network; KL by Monte Carlo.
        p_bar = fit_linearized_policy(batch.X, before.act_batch(batch.obs), before.covariance, None, 1e-6)
        dyn = fit_dynamics(batch.X, batch.U, None, 1e-6)
        x1 = fit_initial_state(batch.X, 1e-6)
        kl = _monte_carlo_kl(algorithm.local_policies[m], p_bar, dyn, x1, np.random.default_rng(m))
        assert report.epsilon == pytest.approx(algorithm.config.kl_step * T * report.step_mult)
        assert kl == pytest.approx(report.epsilon, rel=0.2), (m, kl, report.epsilon)


def _monte_carlo_kl(p, q, dyn, x1, rng, n=4000):
    """E_p Σ_t [log p(u|x) − log q(u|x)] along trajectories of p under dyn."""
    x = rng.multivariate_normal(x1.mu, x1.sigma, size=n)
    total = np.zeros(n)
    for t in range(T):
        u = x @ p.K[t].T + p.k[t] + rng.standard_normal((n, 2)) @ p.chol_cov[t].T
        total += _log_normal(u, x @ p.K[t].T + p.k[t], p.cov[t]) - _log_normal(u, x @ q.K[t].T + q.k[t], q.cov[t])
        z = np.concatenate([x, u], axis=1)
        x = z @ dyn.F[t].T + dyn.f[t] + rng.multivariate_normal(np.zeros(4), dyn.W[t], size=n)
    return float(total.mean())


def _log_normal(u, mu, cov):
    d = u - mu
    return -0.5 * (np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d) + np.linalg.slogdet(2 * np.pi * cov)[1])


def test_step_size_rules_follow_the_cost_model():
    rng = np.random.default_rng(2)
    for rule in ("classic", "global"):
        system, algorithm = _setup(step_rule=rule, step_size=StepSizeConfig(min_mult=0.01, max_mult=100.0))
        first = algorithm.iteration(_sample(system, algorithm, rng))
        second = algorithm.iteration(_sample(system, algorithm, rng))
        prev = np.mean([c.global_cost for c in first.conditions])
        predicted = np.mean([c.predicted_cost for c in first.conditions])
        actual = np.mean([c.local_cost if rule == "classic" else c.global_cost for c in second.conditions])
        # ε' = ε (ℓ^k_{k−1} − ℓ^{k−1,π}_{k−1}) / 2(ℓ^k_{k−1} − ℓ^{k}_{k}) from the paper's Sec. 4.2; doing at
        # least as well as predicted (a non-positive denominator) grows the step to the maximum.
        assert predicted < prev
        expected = 100.0 if actual <= predicted else np.clip((predicted - prev) / (2 * (predicted - actual)), 0.01, 100.0)
        assert second.conditions[0].step_mult == pytest.approx(expected, rel=1e-6), rule


def test_on_policy_samples_the_global_policy_after_the_first_iteration():
    rng = np.random.default_rng(3)
    system, algorithm = _setup(sampling="on_policy")
    assert algorithm.sampling_policies() == algorithm.local_policies
    algorithm.iteration(_sample(system, algorithm, rng))
    assert all(p is algorithm.global_policy for p in algorithm.sampling_policies())
    result = algorithm.iteration(_sample(system, algorithm, rng))
    assert np.isfinite(result.s_step_loss)


def test_bad_input_names_the_field_and_leaves_state_alone():
    rng = np.random.default_rng(4)
    system, algorithm = _setup()
    samples = _sample(system, algorithm, rng)
    before = algorithm.local_policies
    with pytest.raises(ValueError, match="samples_per_condition: expected 2 batches"):
        algorithm.iteration(samples[:1])
    short = SampleBatch(samples[1].X[:, :10], samples[1].U[:, :10])
    with pytest.raises(ValueError, match=r"samples_per_condition\[1\]: expected a SampleBatch with T=30"):
        algorithm.iteration([samples[0], short])
    wrong_obs = SampleBatch(samples[1].X, samples[1].U, obs=samples[1].X[:, :, :3])
    with pytest.raises(ValueError, match=r"samples_per_condition\[1\]\.obs: expected dO=4"):
        algorithm.iteration([samples[0], wrong_obs])
    assert algorithm.local_policies == before and algorithm.iteration_count == 0
    with pytest.raises(ValueError, match="step_rule: expected one of"):
        _config(step_rule="fast")
    with pytest.raises(ValueError, match="sampling: expected one of"):
        _config(sampling="both")
    with pytest.raises(ValueError, match="kl_step: expected a positive number"):
        _config(kl_step=-1.0)
    with pytest.raises(ValueError, match="s_step_history: expected an integer >= 1, got 0"):
        _config(s_step_history=0)
    with pytest.raises(ValueError, match="global_policy: expected a GaussianPolicy with dU=2"):
        MDGPS(_config(), COST, before, mlp_global_policy(4, 3))


@pytest.mark.parametrize("history", [1, 2])
def test_s_step_history_trains_on_earlier_iterations_samples_with_their_final_targets(history):
    rng = np.random.default_rng(6)
    system, algorithm = _setup(s_step_history=history, s_step=SStepConfig(iterations=5, batch_size=16))
    calls = []
    update = algorithm.s_step.update
    algorithm.s_step.update = lambda obs, mu, prec: calls.append((obs, mu, prec)) or update(obs, mu, prec)
    first = _sample(system, algorithm, rng)
    algorithm.iteration(first)
    # iteration 1 fits the network twice: to the initial local policies, then to the C-step's
    assert len(calls) == 2 and all(len(c[0]) == 10 for c in calls)
    first_targets = np.concatenate([np.einsum("tux,ntx->ntu", p.K, s.X) + p.k
                                    for p, s in zip(algorithm.local_policies, first)])
    second = _sample(system, algorithm, rng)
    algorithm.iteration(second)
    obs, mu, prec = calls[-1]
    new_obs = np.concatenate([s.obs for s in second])
    if history == 1:
        np.testing.assert_array_equal(obs, new_obs)
    else:
        # the earlier batch with the targets of iteration 1's final local policies, not the catch-up's
        np.testing.assert_array_equal(obs, np.concatenate([np.concatenate([s.obs for s in first]), new_obs]))
        np.testing.assert_allclose(mu[:10], first_targets)
        assert not np.allclose(mu[:10], calls[0][1])
    assert len(mu) == len(prec) == len(obs)


class _ConcaveInU:
    """COST with L_uu = −1e20 I: Q_uu = L_uu/η + C̄⁻¹ + ... is not PD for any η ≤ eta_max = 1e16."""

    def expand(self, samples):
        e = COST.expand(samples)
        return CostExpansion(e.l, e.lx, e.lu, e.lxx, np.broadcast_to(-1e20 * np.eye(2), e.luu.shape), e.lux)


def test_degenerate_c_step_keeps_the_previous_local_policy_and_is_reported():
    rng = np.random.default_rng(5)
    system = point_mass(T=T)
    policy = init_pd(T, 4, 2, slice(0, 2), slice(2, 4), np.zeros(2), 1.0, 1.0, 1.0)
    algorithm = MDGPS(_config(), [COST, _ConcaveInU()], [policy] * len(STARTS), mlp_global_policy(4, 2, (20, 20), seed=0))
    for iteration in (1, 2):
        before = algorithm.local_policies
        result = algorithm.iteration(_sample(system, algorithm, rng))
        healthy, degenerate = result.conditions
        assert result.degenerate_c_steps == 1
        assert degenerate.c_step_degenerate and "Q_uu not positive definite" in degenerate.c_step_error
        assert "min eigenvalue -1e+20" in degenerate.c_step_error
        assert np.isnan(degenerate.eta) and degenerate.predicted_cost == degenerate.local_cost
        assert algorithm.local_policies[1] is before[1]
        assert not healthy.c_step_degenerate and np.isfinite(healthy.eta)
        assert not np.allclose(algorithm.local_policies[0].K, before[0].K), iteration


def test_pose_state_reaches_the_s_step_and_a_missing_slice_is_refused_first(record_s_step):
    calls = record_s_step("gps_ros.algorithms.global_policy.SStep")
    system, algorithm = _setup(s_step=SStepConfig(iterations=1, pose_weight=1.0, pose_state=("velocity",)))
    rng = np.random.default_rng(8)
    slices = {"position": slice(0, 2), "velocity": slice(2, 4)}
    samples = [SampleBatch(s.X, s.U, state_slices=slices) for s in _sample(system, algorithm, rng)]
    before = copy.deepcopy(algorithm.local_policies)
    with pytest.raises(ValueError, match=r"^pose_state: slices \['velocity'\] are not in the samples' state"):
        algorithm.iteration([SampleBatch(s.X, s.U, state_slices={"position": slice(0, 2)}) for s in samples])
    assert all(np.array_equal(p.K, q.K) and np.array_equal(p.k, q.k) for p, q in zip(algorithm.local_policies, before))
    assert algorithm.iteration_count == 0 and not calls
    algorithm.iteration(samples)
    np.testing.assert_array_equal(calls[-1][1], np.concatenate([s.X[:, :, 2:4] for s in samples]))
