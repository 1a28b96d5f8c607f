import numpy as np
import pytest

from gps_ros.core.dynamics import InitialStateDistribution
from gps_ros.core.kl_lqr import init_lqr
from gps_ros.core.linear_gaussian import LinearGaussianPolicy, init_pd
from gps_ros.core.linear_system import QuadraticStateCost, lqr_optimum, random_stable_system
from gps_ros.core.noise import draw_noise


def _random_policy(rng, T=4, dX=3, dU=2):
    A = rng.standard_normal((T, dU, dU))
    return LinearGaussianPolicy(rng.standard_normal((T, dU, dX)), rng.standard_normal((T, dU)), A @ A.transpose(0, 2, 1) + np.eye(dU))


def test_act_noise_has_policy_covariance():
    rng = np.random.default_rng(0)
    p = _random_policy(rng)
    x = rng.standard_normal(3)
    noise = rng.standard_normal((200_000, 2))
    U = p.act_batch(np.tile(x, (len(noise), 1)), 2, noise)
    np.testing.assert_allclose(U.mean(0), p.K[2] @ x + p.k[2], atol=0.02)
    np.testing.assert_allclose(np.cov(U.T), p.cov[2], rtol=0.02, atol=0.02)
    np.testing.assert_allclose(p.act(x, 2, noise[7]), U[7])
    np.testing.assert_allclose(p.act(x, 2), p.K[2] @ x + p.k[2])


def test_fold_noise_reproduces_noisy_actions():
    rng = np.random.default_rng(1)
    p = _random_policy(rng)
    noise = rng.standard_normal((4, 2))
    folded = p.fold_noise(noise)
    for t in range(4):
        x = rng.standard_normal(3)
        np.testing.assert_allclose(folded.act(x, t), p.act(x, t, noise[t]))
    np.testing.assert_allclose(folded.cov, p.cov)


def test_init_pd_is_a_pd_controller():
    p = init_pd(5, 6, 3, slice(0, 3), slice(3, 6), np.array([0.1, -0.2, 0.3]), np.array([10.0, 20.0, 30.0]), 2.0, 0.5)
    x = np.array([1.0, 2.0, 3.0, -1.0, 0.5, 0.0])
    expected = np.array([10.0, 20.0, 30.0]) * (np.array([0.1, -0.2, 0.3]) - x[:3]) - 2.0 * x[3:]
    np.testing.assert_allclose(p.act(x, 4), expected)
    np.testing.assert_allclose(p.cov, np.broadcast_to(0.5 * np.eye(3), (5, 3, 3)))


def test_init_lqr_matches_riccati_optimum():
    rng = np.random.default_rng(2)
    system = random_stable_system(rng, T=20, dX=4, dU=2)
    x0 = rng.standard_normal(4)
    Wx, Wu = np.diag([1.0, 2.0, 0.5, 0.1]), 0.3 * np.eye(2)
    p = init_lqr(system.dynamics(), x0, Wx, Wu, 0.2)
    K, k, _ = lqr_optimum(system, QuadraticStateCost(Wx, Wu, x0), InitialStateDistribution(x0, np.eye(4)))
    np.testing.assert_allclose(p.K, K, atol=1e-9)
    np.testing.assert_allclose(p.k, k, atol=1e-9)
    np.testing.assert_allclose(p.cov, np.broadcast_to(0.2 * np.eye(2), (20, 2, 2)))


def test_smoothed_noise_has_unit_variance_and_correlation():
    rng = np.random.default_rng(3)
    noise = draw_noise(rng, 20_000, 30, 2, smooth_sigma=2.0)
    np.testing.assert_allclose(noise.var(axis=0), 1.0, atol=0.05)
    lag1 = np.mean(noise[:, 1:] * noise[:, :-1])
    assert lag1 > 0.8  # a Gaussian filter of width 2 steps: neighbours correlate at exp(-1/16)
    white = draw_noise(rng, 20_000, 5, 2)
    assert abs(np.mean(white[:, 1:] * white[:, :-1])) < 0.02


def test_bad_input_names_the_field():
    rng = np.random.default_rng(4)
    p = _random_policy(rng)
    with pytest.raises(ValueError, match=r"k: expected shape \[4, 2\]"):
        LinearGaussianPolicy(p.K, np.zeros((4, 3)), p.cov)
    with pytest.raises(ValueError, match=r"x: expected shape \[3\], got \[2\]"):
        p.act(np.zeros(2), 0)
    with pytest.raises(ValueError, match=r"t: expected an integer in \[0, 4\), got 4"):
        p.act(np.zeros(3), 4)
    with pytest.raises(ValueError, match=r"noise: expected shape \[4, 2\]"):
        p.fold_noise(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="position_slice"):
        init_pd(5, 6, 3, slice(0, 2), slice(3, 6), np.zeros(3), 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="noise_variance"):
        init_pd(5, 6, 3, slice(0, 3), slice(3, 6), np.zeros(3), 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="smooth_sigma"):
        draw_noise(rng, 2, 3, 1, smooth_sigma=-1.0)
