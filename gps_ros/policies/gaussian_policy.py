"""The global policy pi(u | o) = N(mu(o), Sigma): a neural mean and a state-independent covariance."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gps_ros.core.validation import check_array, check_positive_definite
from gps_ros.policies.networks import PolicyArchitecture, build_network
from gps_ros.policies.normalization import Normalization


def default_device() -> torch.device:
    """A GPU when torch sees one, otherwise the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class GaussianPolicy:
    """Conditionally Gaussian policy u ~ N(mu(o), Sigma) with mu a network on normalised obs.

    architecture: the network description; network: a module built from it (a fresh
    one, seeded by ``seed``, when None); normalization: input normalisation (identity
    when None); covariance: Sigma [dU, dU] (identity when None).
    Implements the Policy protocol ``act(x [dX], obs [dO], t, noise [dU]) -> u [dU]``;
    the state x and time t are not used: the policy sees only the observation.
    """

    def __init__(
        self,
        architecture: PolicyArchitecture,
        network: nn.Module | None = None,
        normalization: Normalization | None = None,
        covariance: np.ndarray | None = None,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> None:
        self.architecture = architecture
        self.device = torch.device(device) if device is not None else default_device()
        if network is None:
            # fork_rng: seeding the initial weights must not disturb the caller's torch RNG
            with torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(seed)
                network = build_network(architecture)
        self.network = network.to(self.device).float()
        self.set_normalization(normalization if normalization is not None else Normalization.identity(architecture))
        self.set_covariance(np.eye(architecture.dU) if covariance is None else covariance)

    @property
    def dO(self) -> int:
        return self.architecture.dO

    @property
    def dU(self) -> int:
        return self.architecture.dU

    def set_normalization(self, normalization: Normalization) -> None:
        if normalization.shift.shape != (self.dO,):
            raise ValueError(f"normalization: expected shift/scale of shape [{self.dO}], got {list(normalization.shift.shape)}")
        self.normalization = normalization
        self._shift = torch.as_tensor(normalization.shift, dtype=torch.float32, device=self.device)
        self._scale = torch.as_tensor(normalization.scale, dtype=torch.float32, device=self.device)

    def set_covariance(self, covariance: np.ndarray) -> None:
        """Sigma [dU, dU], symmetric positive definite."""
        cov = check_array("covariance", covariance, (self.dU, self.dU))
        self.chol_covariance = check_positive_definite("covariance", cov)
        self.covariance = cov

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """mu(o) for raw obs [B, dO] on self.device -> [B, dU]; differentiable (used by the S-step)."""
        return self.network((obs - self._shift) * self._scale)

    def mean_and_pose(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu(o) [B, dU], pose head output [B, pose_dim]) for raw obs [B, dO]; needs architecture.pose_dim > 0."""
        if not self.architecture.pose_dim:
            raise ValueError("pose_dim: the S-step's pose loss needs a pose head; the architecture has pose_dim 0")
        return self.network.forward_with_pose((obs - self._shift) * self._scale)

    def act(self, x: np.ndarray | None, obs: np.ndarray, t: int, noise: np.ndarray | None = None) -> np.ndarray:
        """u = mu(obs) + chol(Sigma) noise for one observation obs [dO] and noise [dU] (zeros when None)."""
        obs = check_array("obs", obs, (self.dO,))
        with torch.inference_mode():
            o = torch.from_numpy(obs.astype(np.float32)).to(self.device)
            mu = self.mean(o[None])[0].cpu().numpy().astype(np.float64)
        if noise is None:
            return mu
        return mu + self.chol_covariance @ check_array("noise", noise, (self.dU,))

    def act_batch(self, obs: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Mean actions mu(o) [N, T, dU] for obs [N, T, dO] (to linearise the global policy)."""
        obs = check_array("obs", obs, (None, None, self.dO))
        N, T, _ = obs.shape
        rows = obs.reshape(N * T, self.dO).astype(np.float32)
        out = np.empty((N * T, self.dU))
        with torch.inference_mode():
            for start in range(0, N * T, chunk):
                o = torch.from_numpy(rows[start : start + chunk]).to(self.device)
                out[start : start + chunk] = self.mean(o).cpu().numpy()
        return out.reshape(N, T, self.dU)
