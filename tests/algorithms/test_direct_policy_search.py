"""Direct policy search (CMA-ES on the policy's weights) on the pendulum task of test_variational_gps."""

import numpy as np
import pytest

from gps_ros.algorithms.direct_policy_search import DirectPolicySearch, DirectSearchConfig, policy_rollouts
from gps_ros.core.costs.base import expand_around
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
    best = [i.best_cost for i in infos]
    assert all(b1 <= b0 for b0, b1 in zip(best, best[1:]))
    assert [i.evaluations for i in infos] == [80, 160, 240, 320]
    assert best[-1] < 0.5 * start
    # The policy now holds the best candidate: its rollouts cost what the search reported.
    assert np.mean([policy_cost(model, policy, x, T) for x in X0]) == pytest.approx(best[-1], rel=1e-9)
    # σ is not searched.
    assert np.array_equal(policy.log_std.detach(), log_std)
    # The reference is DDP from the same states (it solves this task well below the untrained policy).
    ddp = np.mean([expand_around(COST, q.X, q.U).l.sum() for q in search.initial])
    assert ddp < start


def test_candidate_with_non_finite_actions_scores_infinity():
    model = Pendulum()
    policy = SoftplusPolicy(2, 1, hidden=5, seed=0)
    with torch_threads(1):
        search = DirectPolicySearch(model, COST, X0, policy, CONFIG, T=T, seed=0)
        weights = search.best_weights.copy()
        weights[0] = np.nan
        assert search.objective(weights) == float("inf")
        with pytest.raises(ValueError, match="non-finite action at t=0"):
            policy_rollouts(model, policy, X0, T)


@pytest.mark.parametrize("field, value, message", [
    ("generations", 0, "generations: expected a positive integer, got 0"),
    ("population", 1, "population: expected at least 2 candidates, got 1"),
    ("initial_sigma", -0.1, "initial_sigma: expected a positive finite number, got -0.1"),
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
