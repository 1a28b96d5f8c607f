import numpy as np
import pytest

from gps_ros.algorithms.traj_opt import TrajOpt, TrajOptConfig
from gps_ros.core.dynamics import InitialStateDistribution
from gps_ros.core.linear_gaussian import init_pd
from gps_ros.core.linear_system import QuadraticStateCost, lqr_optimum, point_mass
from gps_ros.core.noise import draw_noise
from gps_ros.core.priors import DynamicsPriorConfig
from gps_ros.core.traj_distribution import expected_cost, forward

T = 50


def _setup(conditions=1):
    system = point_mass(T=T)
    cost = QuadraticStateCost(np.diag([1.0, 1.0, 0.1, 0.1]), 0.01 * np.eye(2), np.zeros(4))
    policy = init_pd(T, 4, 2, slice(0, 2), slice(2, 4), np.zeros(2), 1.0, 1.0, 1.0)
    # A linear system is one global linear model: two mixture components and a firm prior suffice.
    config = TrajOptConfig(kl_step=1.0, dynamics_prior=DynamicsPriorConfig(max_clusters=2, strength=10.0))
    return system, cost, TrajOpt(config, cost, [policy] * conditions)


def test_converges_to_the_lqr_optimum_on_a_point_mass():
    rng = np.random.default_rng(0)
    system, cost, algorithm = _setup()
    x0 = np.array([1.0, -0.5, 0.0, 0.0])
    x1 = InitialStateDistribution(x0, 1e-6 * np.eye(4))
    _, _, optimum = lqr_optimum(system, cost, x1)
    ratios = []
    for _ in range(6):
        samples = system.rollout(algorithm.local_policies[0], np.tile(x0, (5, 1)), draw_noise(rng, 5, T, 2), rng)
        result = algorithm.iteration([samples])
        report = result.conditions[0]
        if report.eta > algorithm.config.c_step.eta_min:
            assert abs(report.kl - report.epsilon) <= 0.1 * report.epsilon
        # Exact expected cost of the new local policy (its noise included) under the true dynamics.
        traj = forward(algorithm.local_policies[0], system.dynamics(), x1)
        ratios.append(expected_cost(traj, cost.quadratic(T)).sum() / optimum)
    assert ratios[0] > 1.05  # the PD start is far from optimal
    assert ratios[-1] <= 1.05, ratios


def test_bad_input_names_the_field_and_leaves_state_alone():
    rng = np.random.default_rng(1)
    system, _, algorithm = _setup(conditions=2)
    samples = system.rollout(algorithm.local_policies[0], np.zeros((3, 4)), draw_noise(rng, 3, T, 2), rng)
    before = algorithm.local_policies
    with pytest.raises(ValueError, match="samples_per_condition: expected 2 batches"):
        algorithm.iteration([samples])
    short = samples[:1]
    wrong = type(samples)(short.X[:, :10], short.U[:, :10])
    with pytest.raises(ValueError, match=r"samples_per_condition\[1\]: expected a SampleBatch with T=50"):
        algorithm.iteration([samples, wrong])
    assert algorithm.local_policies == before and algorithm.iteration_count == 0
    with pytest.raises(ValueError, match="kl_step: expected a positive number"):
        TrajOptConfig(kl_step=0.0)
