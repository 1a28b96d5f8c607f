"""Save/load and flat-array round trips give identical actions; files are written atomically."""

import json

import numpy as np
import pytest
import torch

from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.serialization import load_policy, policy_from_flat, policy_to_flat, save_policy
from gps_ros.policies.sstep import SStep, SStepConfig

IMAGE = (2, 8, 10)
ARCHITECTURES = {
    "mlp": PolicyArchitecture("mlp", dO=5, dU=3, hidden_sizes=(16, 8)),
    "cnn": PolicyArchitecture(
        "cnn", dO=3 + 160 + 4, dU=3, image_shape=IMAGE, image_slice=(3, 163), conv_channels=(4, 3),
        conv_kernels=(3, 3), conv_strides=(1, 2), hidden_sizes=(12,),
    ),
    "cnn with pose head": PolicyArchitecture(
        "cnn", dO=3 + 160 + 4, dU=3, image_shape=IMAGE, image_slice=(3, 163), conv_channels=(4, 3),
        conv_kernels=(3, 3), conv_strides=(1, 2), hidden_sizes=(12,), pose_dim=2,
    ),
}


def trained_policy(arch):
    """A policy with fitted normalisation, non-identity covariance and trained weights."""
    rng = np.random.default_rng(0)
    N, T = 2, 4
    obs = rng.uniform(0, 255, (N, T, arch.dO))
    A = rng.standard_normal((arch.dU, arch.dU))
    precision = np.broadcast_to(A @ A.T + np.eye(arch.dU), (N, T, arch.dU, arch.dU))
    policy = GaussianPolicy(arch, device="cpu", seed=1)
    SStep(policy, SStepConfig(iterations=5, batch_size=4)).update(obs, rng.standard_normal((N, T, arch.dU)), precision)
    return policy


def assert_same_actions(a, b):
    rng = np.random.default_rng(5)
    obs = rng.uniform(0, 255, (3, 2, a.dO))
    np.testing.assert_array_equal(a.act_batch(obs), b.act_batch(obs))
    for o in obs.reshape(-1, a.dO):
        noise = rng.standard_normal(a.dU)
        np.testing.assert_array_equal(a.act(None, o, 0, noise), b.act(None, o, 0, noise))
    assert b.normalization.n_fit == a.normalization.n_fit


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_file_round_trip(tmp_path, kind):
    policy = trained_policy(ARCHITECTURES[kind])
    path = tmp_path / "sub" / "policy.pt"
    save_policy(policy, path)
    save_policy(policy, path)  # overwrite in place
    assert [p.name for p in path.parent.iterdir()] == ["policy.pt"]  # no temp files left behind
    loaded = load_policy(path, device="cpu")
    assert loaded.architecture == policy.architecture
    np.testing.assert_array_equal(loaded.covariance, policy.covariance)
    assert_same_actions(policy, loaded)


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_flat_round_trip(kind):
    policy = trained_policy(ARCHITECTURES[kind])
    params, description = policy_to_flat(policy)
    assert params.dtype == np.float64 and params.ndim == 1
    assert PolicyArchitecture.from_dict(json.loads(description)["architecture"]) == policy.architecture
    assert_same_actions(policy, policy_from_flat(params, description, device="cpu"))


def test_architecture_json_round_trip():
    for arch in ARCHITECTURES.values():
        assert PolicyArchitecture.from_json(arch.to_json()) == arch


def test_bad_files_and_arrays_are_refused(tmp_path):
    policy = trained_policy(ARCHITECTURES["mlp"])
    params, description = policy_to_flat(policy)
    with pytest.raises(ValueError, match="params"):
        policy_from_flat(params[:-1], description)
    with pytest.raises(ValueError, match="description"):
        policy_from_flat(params, "{not json")
    other = torch.nn.Linear(2, 2)
    torch.save(other.state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="path"):
        load_policy(tmp_path / "other.pt")
    save_policy(policy, tmp_path / "policy.pt")
    payload = torch.load(tmp_path / "policy.pt", weights_only=True)
    payload["format"] = "gps_ros.gaussian_policy/1"
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"path: expected a gps_ros\.gaussian_policy/2 file, .*old\.pt \(format 'gps_ros\.gaussian_policy/1'\)"):
        load_policy(tmp_path / "old.pt")
    with pytest.raises(ValueError, match="architecture"):
        PolicyArchitecture.from_json('{"kind": "mlp", "dO": 2, "dU": 1, "colour": "red"}')


@pytest.mark.parametrize("key", ["layout", "architecture", "n_fit"])
def test_flat_description_missing_key_is_named(key):
    params, description = policy_to_flat(trained_policy(ARCHITECTURES["mlp"]))
    desc = json.loads(description)
    del desc[key]
    with pytest.raises(ValueError, match=rf"description: missing key '{key}'"):
        policy_from_flat(params, json.dumps(desc))


@pytest.mark.parametrize("n_fit", ["many", 2.5, -1, None])
def test_flat_description_bad_n_fit_is_named(n_fit):
    params, description = policy_to_flat(trained_policy(ARCHITECTURES["mlp"]))
    desc = json.loads(description)
    desc["n_fit"] = n_fit
    with pytest.raises(ValueError, match=r"description\.n_fit: expected an integer >= 0"):
        policy_from_flat(params, json.dumps(desc))


@pytest.mark.parametrize("key", ["state_dict", "shift", "covariance", "n_fit"])
def test_file_missing_payload_key_is_named(tmp_path, key):
    path = tmp_path / "policy.pt"
    save_policy(trained_policy(ARCHITECTURES["mlp"]), path)
    payload = torch.load(path, weights_only=True)
    del payload[key]
    torch.save(payload, path)
    with pytest.raises(ValueError, match=rf"path: missing key '{key}'"):
        load_policy(path)
