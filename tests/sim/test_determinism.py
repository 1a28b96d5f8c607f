"""Same seed, same sample (bit for bit); different seeds differ."""

import numpy as np

from tests.sim.conftest import zero_policy


def test_same_seed_same_sample(agent_of):
    agent = agent_of("pr2_peg")
    policy = zero_policy(agent, 4.0)
    a = agent.sample(policy, None, seed=11)
    agent.sample(policy, 3, seed=12)  # state left behind must not leak into the next trial
    b = agent.sample(policy, None, seed=11)
    c = agent.sample(policy, None, seed=13)
    for field in ("X", "U", "noise", "obs"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.extras["target_position"], b.extras["target_position"])
    assert not np.array_equal(a.X, c.X)
    assert not np.array_equal(a.extras["target_position"], c.extras["target_position"])


def test_sample_many_reproducible_and_smoothed_noise(agent_of):
    agent = agent_of("reacher3")
    policy = zero_policy(agent, 0.01)
    a = agent.sample_many(policy, [0, 1, None], seed=5)
    b = agent.sample_many([policy] * 3, [0, 1, None], seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.N == 3 and not np.array_equal(a.noise[0], a.noise[1])
    # smooth_sigma = 1 step: neighbouring noise values are strongly correlated
    n = agent.sample_many(policy, [0] * 20, seed=6).noise
    corr = np.corrcoef(n[:, 10:-10].ravel(), n[:, 11:-9].ravel())[0, 1]
    assert corr > 0.5
