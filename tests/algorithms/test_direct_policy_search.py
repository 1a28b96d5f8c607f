"""Direct policy search (CMA-ES on the policy's weights) on the pendulum task of test_variational_gps."""

import numpy as np
import pytest

from gps_ros.algorithms.direct_policy_search import DirectPolicySearch, DirectSearchConfig
from gps_ros.algorithms.known_model_search import NonFiniteActionError, policy_rollouts
from gps_ros.core.ilqg import ILQGSettings
from gps_ros.policies.softplus_policy import SoftplusPolicy
from gps_ros.policies.threads import torch_threads
from tests.algorithms.test_variational_gps import COST, T, X0, Pendulum, policy_cost

CONFIG = DirectSearchConfig(generations=10, population=8, initial_sigma=0.3, ddp_cost_weight=100.0,
                            initial_ddp=ILQGSettings(max_iterations=30))


def test_search_lowers_the_cost_and_the_policy_holds_the_best_candidate():
    model = Pendulum()
    policy = SoftplusPolicy(2, 1, hidden=5, seed=0)
    log_std = policy.log_std.detach().clone()
    with torch_threads(1):
        search = DirectPolicySearch(model, COST, X0, policy, CONFIG, T=T, seed=0)
        start = search.best_cost
        # The starting objective is the untrained (normalised) policy's cost, summed independently.
        assert start == pytest.approx(np.mean([policy_cost(model, policy, x, T) for x in X0]), rel=1e-9)
        infos = [search.iteration() for _ in range(4)]
    assert [i.evaluations for i in infos] == [80, 160, 240, 320]
    assert infos[-1].best_cost < 0.5 * start
    # The policy now holds the best candidate: its rollouts cost what the search reported, and a
    # change to the search's copy of the weights does not reach the policy.
    search.best_weights[:] = 0.0
    assert np.mean([policy_cost(model, policy, x, T) for x in X0]) == pytest.approx(infos[-1].best_cost, rel=1e-9)
    # σ is not searched.
    assert np.array_equal(policy.log_std.detach(), log_std)


def test_search_is_reproducible_by_seed_and_leaves_numpy_global_rng_alone():
    model = Pendulum()
    state = np.random.get_state()[1].copy()

    def best(seed):
        with torch_threads(1):
            search = DirectPolicySearch(model, COST, X0, SoftplusPolicy(2, 1, hidden=5, seed=0),
                                        DirectSearchConfig(generations=3, population=6, initial_sigma=0.3,
                                                           initial_ddp=ILQGSettings(max_iterations=5)), T=T, seed=seed)
            return search.iteration().best_cost

    assert best(1) == best(1)
    assert best(1) != best(2)
    assert np.array_equal(np.random.get_state()[1], state)


def test_candidate_with_non_finite_actions_scores_infinity():
    model = Pendulum()
    policy = SoftplusPolicy(2, 1, hidden=5, seed=0)
    with torch_threads(1):
        search = DirectPolicySearch(model, COST, X0, policy, CONFIG, T=T, seed=0)
        # Finite weights whose actions overflow to ±inf.
        assert search.objective(np.full_like(search.best_weights, 1e300)) == float("inf")
        with pytest.raises(NonFiniteActionError, match=r"non-finite action at t=\d+"):
            policy_rollouts(model, policy, X0, T)


@pytest.mark.parametrize("field, value, message", [
    ("generations", 0, "generations: expected an integer >= 1, got 0"),
    ("generations", float("nan"), "generations: expected an integer >= 1, got nan"),
    ("population", 1, "population: expected an integer >= 2, got 1"),
    ("population", None, "population: expected an integer >= 2, got None"),
    ("initial_sigma", -0.1, "initial_sigma: expected a positive finite number, got -0.1"),
    ("initial_sigma", "0.1", "initial_sigma: expected a positive finite number, got '0.1'"),
    ("ddp_cost_weight", float("nan"), "ddp_cost_weight: expected a positive finite number, got nan"),
])
def test_config_rejects_bad_values_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        DirectSearchConfig(**{field: value})


def test_batched_rollouts_match_one_state_at_a_time():
    model = Pendulum()
    policy = SoftplusPolicy(2, 1, hidden=5, init_std=0.5, seed=3)
    noise = np.random.default_rng(0).standard_normal((len(X0), T, 1))
    for eps in (None, noise):
        X, U = policy_rollouts(model, policy, X0, T, eps)
        for n, x in enumerate(X0):
            for t in range(T):
                assert np.allclose(X[n, t], x) and np.allclose(U[n, t], policy.act(x, None if eps is None else eps[n, t]))
                x = model.step(x, U[n, t])


def test_mean_weights_round_trip_and_refuse_a_wrong_size():
    policy, other = SoftplusPolicy(2, 1, hidden=5, seed=0), SoftplusPolicy(2, 1, hidden=5, seed=1)
    weights = other.mean_weights()
    assert weights.shape == (5 * 2 + 5 + 1 * 5 + 1,)
    policy.set_mean_weights(weights)
    X = np.random.default_rng(0).standard_normal((7, 2))
    assert np.allclose(policy.mean(X), other.mean(X))
    weights[:] = 0.0
    assert np.allclose(policy.mean(X), other.mean(X))
    with pytest.raises(ValueError, match=r"weights: expected shape \[21\]"):
        policy.set_mean_weights(np.zeros(20))
