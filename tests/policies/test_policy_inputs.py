"""Normalisation against numpy, sampling against Monte Carlo, and refusal of bad input before any change."""

import numpy as np
import pytest
import torch

from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.normalization import Normalization
from gps_ros.policies.sstep import SStep, SStepConfig

MLP = PolicyArchitecture("mlp", dO=4, dU=2)


def test_normalization_matches_numpy_mean_std():
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((3, 5, 4)) * [1.0, 10.0, 0.1, 0.0] + [0.0, 5.0, -2.0, 7.0]
    norm = Normalization.fit(obs, MLP)
    rows = obs.reshape(-1, 4)
    np.testing.assert_allclose(norm.shift, rows.mean(axis=0))
    np.testing.assert_allclose(1.0 / norm.scale[:3], rows.std(axis=0)[:3])
    assert norm.scale[3] == 1.0  # a constant input is centred, not divided by zero
    np.testing.assert_allclose(norm.apply(rows)[:, :3].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(norm.apply(rows)[:, :3].std(axis=0), 1.0)


def test_images_are_scaled_to_unit_range_not_normalised():
    arch = PolicyArchitecture("cnn", dO=2 + 12, dU=1, image_shape=(1, 3, 4), image_slice=(2, 14), conv_channels=(2,),
                              conv_kernels=(3,), conv_strides=(1,))
    rng = np.random.default_rng(1)
    obs = np.concatenate([rng.standard_normal((4, 3, 2)) * 3 + 1, rng.integers(0, 256, (4, 3, 12))], axis=-1)
    norm = Normalization.fit(obs, arch)
    np.testing.assert_allclose(norm.shift[:2], obs[..., :2].reshape(-1, 2).mean(axis=0))
    np.testing.assert_array_equal(norm.shift[2:], 0.0)
    np.testing.assert_allclose(norm.scale[2:], 1 / 255)
    scaled = norm.apply(obs)[..., 2:]
    assert scaled.min() >= 0.0 and scaled.max() <= 1.0


def test_act_samples_have_mean_mu_and_covariance_sigma():
    rng = np.random.default_rng(2)
    sigma = np.array([[2.0, 0.6], [0.6, 0.5]])
    policy = GaussianPolicy(MLP, covariance=sigma, device="cpu", seed=0)
    obs = rng.standard_normal(4)
    u = np.array([policy.act(None, obs, 0, rng.standard_normal(2)) for _ in range(20000)])
    mu = policy.act(None, obs, 0)
    np.testing.assert_allclose(u.mean(axis=0), mu, atol=4 * np.sqrt(2.0 / 20000))
    np.testing.assert_allclose(np.cov(u.T), sigma, atol=0.06)


def test_act_refuses_bad_input():
    policy = GaussianPolicy(MLP, device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"obs: expected shape \[4\], got \[5\]"):
        policy.act(None, np.zeros(5), 0, np.zeros(2))
    with pytest.raises(ValueError, match="obs: expected finite"):
        policy.act(None, np.array([0.0, np.nan, 0.0, 0.0]), 0, np.zeros(2))
    with pytest.raises(ValueError, match="noise"):
        policy.act(None, np.zeros(4), 0, np.zeros(3))
    with pytest.raises(ValueError, match="obs"):
        policy.act_batch(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="covariance"):
        policy.set_covariance(np.diag([1.0, -1.0]))


def test_sstep_refuses_bad_input_before_changing_anything():
    rng = np.random.default_rng(3)
    N, T = 2, 3
    obs, mu = rng.standard_normal((N, T, 4)), rng.standard_normal((N, T, 2))
    precision = np.broadcast_to(np.eye(2), (N, T, 2, 2)).copy()
    policy = GaussianPolicy(MLP, device="cpu", seed=0)
    sstep = SStep(policy, SStepConfig(iterations=2))
    weights = [p.detach().clone() for p in policy.network.parameters()]
    not_pd = precision.copy()
    not_pd[1, 2] = [[1.0, 2.0], [2.0, 1.0]]
    nan_mu = mu.copy()
    nan_mu[0, 1, 0] = np.inf
    bad = {
        "obs": (rng.standard_normal((N, T, 5)), mu, precision),
        "target_mu": (obs, nan_mu, precision),
        "precision": (obs, mu, not_pd),
    }
    for field, args in bad.items():
        with pytest.raises(ValueError, match=field):
            sstep.update(*args)
    with pytest.raises(ValueError, match=r"precision: expected positive-definite matrices, matrix \(1, 2\)"):
        sstep.update(obs, mu, not_pd)
    assert all(torch.equal(a, b) for a, b in zip(weights, policy.network.parameters()))
    assert not policy.normalization.fitted
    np.testing.assert_array_equal(policy.covariance, np.eye(2))
    assert not sstep.optimizer.state


def test_configs_and_architectures_refuse_bad_values():
    with pytest.raises(ValueError, match="batch_size"):
        SStepConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        SStepConfig(lr=-1.0)
    with pytest.raises(ValueError, match="kind"):
        PolicyArchitecture("rnn", dO=2, dU=1)
    with pytest.raises(ValueError, match="image_slice"):
        PolicyArchitecture("cnn", dO=10, dU=1, image_shape=(1, 3, 3), image_slice=(0, 8))
    with pytest.raises(ValueError, match="image_shape"):
        PolicyArchitecture("cnn", dO=10, dU=1)


def test_gaussian_policy_is_a_policy():
    from gps_ros.policies.base import Policy, as_policy

    policy = GaussianPolicy(MLP, device="cpu", seed=0)
    assert isinstance(policy, Policy) and as_policy(policy) is policy
