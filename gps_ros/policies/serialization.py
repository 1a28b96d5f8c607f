"""Saving and loading the global policy: one file for checkpoints and deployment, and
flat float arrays + a JSON description for a ROS message.

A loaded policy needs only the architecture, weights, normalisation and covariance;
no optimizer or training state travels with it.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from gps_ros.atomic_io import atomic_write
from gps_ros.core.validation import check_array
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture, build_network
from gps_ros.policies.normalization import Normalization

# /2: the CNN's last conv layer has no ReLU, so a /1 CNN's weights would compute something else.
FORMAT = "gps_ros.gaussian_policy/2"


def save_policy(policy: GaussianPolicy, path: str | os.PathLike) -> None:
    """Write the policy to ``path`` atomically (temp file in the same folder, then rename)."""
    payload = {
        "format": FORMAT,
        "architecture": policy.architecture.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in policy.network.state_dict().items()},
        "shift": torch.from_numpy(policy.normalization.shift),
        "scale": torch.from_numpy(policy.normalization.scale),
        "n_fit": policy.normalization.n_fit,
        "covariance": torch.from_numpy(policy.covariance),
    }
    with atomic_write(path, "wb", fsync=False) as stream:
        torch.save(payload, stream)


def load_policy(path: str | os.PathLike, device: torch.device | str | None = None) -> GaussianPolicy:
    """Read a policy written by ``save_policy`` (tensors only: safe ``weights_only`` loading)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    found = payload.get("format") if isinstance(payload, dict) else None
    if found != FORMAT:
        raise ValueError(f"path: expected a {FORMAT} file, got {path} (format {found!r})")
    _require_keys("path", payload, ("architecture", "state_dict", "shift", "scale", "n_fit", "covariance"))
    arch = PolicyArchitecture.from_dict(payload["architecture"])
    network = build_network(arch)
    network.load_state_dict(payload["state_dict"])
    normalization = Normalization(payload["shift"].numpy(), payload["scale"].numpy(), _n_fit("path", payload["n_fit"]))
    return GaussianPolicy(arch, network, normalization, payload["covariance"].numpy(), device=device)


def policy_to_flat(policy: GaussianPolicy) -> tuple[np.ndarray, str]:
    """params [P] float64 and a JSON description (architecture, layout, normalisation count).

    params = network tensors in state_dict order, then shift [dO], scale [dO],
    covariance [dU * dU] row-major; the description's "layout" lists (name, shape).
    """
    tensors = {k: v.detach().cpu().double().numpy() for k, v in policy.network.state_dict().items()}
    tensors["normalization.shift"] = policy.normalization.shift
    tensors["normalization.scale"] = policy.normalization.scale
    tensors["covariance"] = policy.covariance
    params = np.concatenate([np.ravel(v) for v in tensors.values()])
    description = {
        "format": FORMAT,
        "architecture": policy.architecture.to_dict(),
        "layout": [[name, list(v.shape)] for name, v in tensors.items()],
        "n_fit": policy.normalization.n_fit,
    }
    return params, json.dumps(description, sort_keys=True)


def policy_from_flat(params: np.ndarray, description: str, device: torch.device | str | None = None) -> GaussianPolicy:
    """Inverse of ``policy_to_flat``."""
    try:
        desc = json.loads(description)
    except json.JSONDecodeError as exc:
        raise ValueError(f"description: expected a JSON object, got invalid JSON ({exc})") from None
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ValueError(f"description: expected a JSON object with format {FORMAT!r}")
    _require_keys("description", desc, ("architecture", "layout", "n_fit"))
    arch = PolicyArchitecture.from_dict(desc["architecture"])
    network = build_network(arch)
    expected_layout = [[k, list(v.shape)] for k, v in network.state_dict().items()]
    expected_layout += [["normalization.shift", [arch.dO]], ["normalization.scale", [arch.dO]], ["covariance", [arch.dU, arch.dU]]]
    if desc["layout"] != expected_layout:
        raise ValueError(f"description: layout does not match the architecture; expected {expected_layout}, got {desc['layout']}")
    sizes = [int(np.prod(shape)) for _, shape in expected_layout]
    params = check_array("params", params, (sum(sizes),))
    chunks = np.split(params, np.cumsum(sizes)[:-1])
    values = {name: chunk.reshape(shape) for (name, shape), chunk in zip(expected_layout, chunks)}
    shift = values.pop("normalization.shift")
    scale = values.pop("normalization.scale")
    covariance = values.pop("covariance")
    network.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()})
    return GaussianPolicy(arch, network, Normalization(shift, scale, _n_fit("description", desc["n_fit"])), covariance, device=device)


def _require_keys(where: str, mapping: dict, keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}; expected keys {list(keys)}, got {sorted(mapping)}")


def _n_fit(where: str, value: object) -> int:
    """The normalisation's sample count: an integer >= 0 (a float only when integral)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{where}.n_fit: expected an integer >= 0, got {value!r}")
    return int(value)
