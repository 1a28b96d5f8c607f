"""Variational GPS (Levine & Koltun 2013, Alg. 1) on a small pendulum task (also used by
test_constrained_gps)."""

from dataclasses import replace

import numpy as np
import pytest

from gps_ros.algorithms.known_model_search import sample_marginals
from gps_ros.algorithms.variational_gps import CostSchedule, VariationalGPS, VGPSConfig
from gps_ros.core.costs.base import expand_around
from gps_ros.core.ilqg import ILQGSettings
from gps_ros.core.traj_distribution import TrajectoryDistribution
from gps_ros.policies.softplus_policy import PolicyFitSettings, SoftplusPolicy
from gps_ros.policies.threads import torch_threads
from gps_ros.sim.locomotion import LocomotionCost


class Pendulum:
    """Damped pendulum x = [θ, ω], u = torque: θ' = θ + dt ω, ω' = ω + dt (u − sin θ − 0.1 ω),
    with analytic Jacobians."""

    dX, dU, dt = 2, 1, 0.1

    def step(self, x, u):
        return np.array([x[0] + self.dt * x[1], x[1] + self.dt * (u[0] - np.sin(x[0]) - 0.1 * x[1])])

    def linearize(self, X, U):
        T = X.shape[0]
        fx = np.zeros((T, 2, 2))
        fx[:, 0, 0] = 1.0
        fx[:, 0, 1] = self.dt
        fx[:, 1, 0] = -self.dt * np.cos(X[:, 0])
        fx[:, 1, 1] = 1.0 - 0.1 * self.dt
        fu = np.zeros((T, 2, 1))
        fu[:, 1, 0] = self.dt
        return fx, fu, np.stack([self.step(x, u) for x, u in zip(X, U)])


# Spin the pendulum at ω = 1 rad/s with a small torque penalty.
COST = LocomotionCost(w_u=0.01, velocity_index=1, target_velocity=1.0)
X0 = np.array([[0.0, 0.0], [0.3, -0.2]])
T = 30


def policy_cost(model, policy, x0, T, noise=None):
    """Σ_t of COST along the deterministic policy's rollout from x0, or with standard-normal noise
    [T, dU] the stochastic policy's (mean plus σ times the noise)."""
    x, total = x0, 0.0
    sigma = np.sqrt(np.diag(policy.cov))
    for t in range(T):
        u = policy.act(x) + (0.0 if noise is None else sigma * noise[t])
        total += COST.w_u * float(u @ u) + (x[1] - COST.target_velocity) ** 2
        x = model.step(x, u)
    return total


CONFIG = VGPSConfig(
    iterations=5,
    schedule=CostSchedule(100.0, 10.0, 5),
    initial_ddp=ILQGSettings(max_iterations=30),
    e_step=ILQGSettings(max_iterations=5, initial_state_cov=1e-4),
    fit_samples=20,
    linearization_samples=5,
    policy_fit=PolicyFitSettings(iterations=100),
)


@pytest.mark.parametrize("e_step_start", ["policy", "previous"])
def test_policy_reaches_ddp_cost(e_step_start):
    model = Pendulum()
    policy = SoftplusPolicy(2, 1, hidden=5, init_std=1.0, seed=0)
    with torch_threads(1):
        vgps = VariationalGPS(model, COST, X0, policy, replace(CONFIG, e_step_start=e_step_start), T=T, seed=0)
        untrained = np.mean([policy_cost(model, policy, x, T) for x in X0])
        ddp = np.mean([expand_around(COST, q.X, q.U).l.sum() for q in vgps.initial])
        infos = [vgps.iteration() for _ in range(CONFIG.iterations)]
    trained = np.mean([policy_cost(model, policy, x, T) for x in X0])
    assert trained < 0.5 * untrained
    assert trained <= 1.1 * ddp
    assert [i.beta for i in infos] == pytest.approx([100.0 * 0.1 ** (k / 5) for k in range(1, 6)])
    # The E-step keeps q a good trajectory: its cost stays near the DDP solution's.
    assert np.all(infos[-1].ddp_cost <= 1.2 * ddp)


def test_e_step_starts_from_the_policy_rollout_or_the_previous_q():
    model = Pendulum()
    policy = SoftplusPolicy(2, 1, hidden=5, init_std=1.0, seed=0)
    with torch_threads(1):
        vgps = VariationalGPS(model, COST, X0, policy, CONFIG, T=T, seed=0)
        vgps.m_step()
        previous_X, previous = np.stack([q.X for q in vgps.initial]), np.stack([q.U for q in vgps.initial])
        # π's own rollout, stepped here one action at a time.
        for x, X, U in zip(X0, *vgps.trajectory_starts(previous_X, previous, "policy")):
            for x_t, u in zip(X, U):
                np.testing.assert_allclose(x_t, x, rtol=1e-12)
                np.testing.assert_allclose(u, policy.act(x), rtol=1e-12)
                x = model.step(x, u)
        for start, expected in zip(vgps.trajectory_starts(previous_X, previous, "previous"), (previous_X, previous)):
            np.testing.assert_array_equal(start, expected)
        # A policy whose actions overflow gives no trajectory: the E-step starts from q's mean.
        policy.set_mean_weights(np.full_like(policy.mean_weights(), 1e300))
        for start, expected in zip(vgps.trajectory_starts(previous_X, previous, "policy"), (previous_X, previous)):
            np.testing.assert_array_equal(start, expected)


def test_schedule_is_exponential_then_fixed():
    schedule = CostSchedule(1.0, 0.1, 50)
    assert schedule.beta(0) == pytest.approx(1.0)
    assert schedule.beta(25) == pytest.approx(0.1**0.5)
    assert schedule.beta(50) == pytest.approx(0.1)
    assert schedule.beta(80) == pytest.approx(0.1)


def test_marginal_samples_match_the_marginals():
    rng = np.random.default_rng(0)
    L = rng.standard_normal((3, 3, 3))
    sigma = L @ np.swapaxes(L, 1, 2)
    sigma[0] = np.diag([1.0, 0.0, 2.0])  # a singular marginal (a known start) is allowed
    mu = rng.standard_normal((3, 3))
    Z = sample_marginals(TrajectoryDistribution(mu, sigma, 2), 20000, rng)
    assert Z.shape == (20000, 3, 3)
    np.testing.assert_allclose(Z.mean(axis=0), mu, atol=0.1)
    for t in range(3):
        np.testing.assert_allclose(np.cov(Z[:, t].T), sigma[t], atol=0.1 * (1 + np.abs(sigma[t]).max()))


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: VGPSConfig(iterations=0), "iterations"),
        (lambda: VGPSConfig(fit_samples=0), "fit_samples"),
        (lambda: VGPSConfig(e_step_start="policy_mean"), "e_step_start"),
        (lambda: CostSchedule(beta_init=-1.0), "beta_init"),
        (lambda: CostSchedule(anneal_iterations=0), "anneal_iterations"),
        (lambda: VariationalGPS(Pendulum(), COST, np.zeros((2, 3)), SoftplusPolicy(2, 1, 2), CONFIG, T=5), "x0"),
        (lambda: VariationalGPS(Pendulum(), COST, X0, SoftplusPolicy(2, 1, 2), CONFIG, U_init=np.zeros((2, 5, 2))), "U_init"),
        (lambda: VariationalGPS(Pendulum(), COST, X0, SoftplusPolicy(3, 1, 2), CONFIG, T=5), "policy"),
        (lambda: VariationalGPS(Pendulum(), COST, X0, SoftplusPolicy(2, 1, 2), CONFIG), "T"),
    ],
)
def test_bad_input_names_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()
