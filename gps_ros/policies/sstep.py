"""The S-step of guided policy search (MDGPS App. B.2): fit the global policy to the local ones.

Minimises sum_{t,i,j} KL(pi(u | o_tij) || p_i(u | x_tij)) over the network weights and
the state-independent covariance. The mean part is the precision-weighted quadratic
    loss = sum_{t,i,j} (mu_pi(o_tij) - mu_tij)^T C_ti^{-1} (mu_pi(o_tij) - mu_tij),
trained with Adam on minibatches; the covariance part has the closed-form minimiser
    Sigma = (mean over (t,i) of C_ti^{-1})^{-1}.
The loss is the paper's form, i.e. twice the KL's mean-dependent part.
With pose_weight > 0 a CNN's pose head is also trained to predict state quantities from
the feature points (pose [N, T, pose_dim], standardised per call), adding
    pose_weight * sum_{t,i,j} |pose_head(o_tij) - z_tij|^2 / M
to the minibatch loss: the pose regression of Levine et al. (JMLR 2016, Sec. 4.3), which
there pretrains the vision layers, here trained alongside the policy's own loss; with
pose_pretrain_iterations > 0 the first call also runs that many steps on the pose term alone
before the policy's loss, which is the paper's pretraining.

Normalisation is fitted on the first call and then kept: the network is warm-started
across iterations, and refitting would move its inputs under weights trained on the
old map. The first iteration's data spans the initial-state distribution, so the
map stays well conditioned; the network absorbs later drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gps_ros.core.validation import check_array, check_positive_definite
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.normalization import Normalization, standardization
from gps_ros.policies.threads import torch_threads


LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class SStepConfig:
    """iterations: Adam steps per S-step call; batch_size: (t, i, j) tuples per step;
    lr, weight_decay: Adam's (L2) settings; lr_schedule: "constant", or "cosine" (each call anneals
    the rate from lr to 0, so the weights an S-step hands over sit at the end of a descent and
    not at a random point of Adam's minibatch noise); progress_every: steps between progress
    reports; cpu_threads: torch CPU threads while training (0: torch's default; see policies.threads);
    pose_weight: weight of the pose-regression term (0: none; > 0 needs pose targets and a pose head);
    pose_state: names of the state slices (e.g. "target_position", "ee_points") the GPS algorithms
    hand the S-step as pose targets, given exactly when pose_weight > 0; pose_pretrain_iterations:
    Adam steps on the pose term alone at the start of the first call (needs pose_weight > 0): the
    feature points learn where things are before the policy's loss moves them."""

    iterations: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    progress_every: int = 100
    seed: int = 0
    cpu_threads: int = 1
    pose_weight: float = 0.0
    pose_state: tuple[str, ...] = ()
    pose_pretrain_iterations: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "progress_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay: expected >= 0, got {self.weight_decay}")
        if not self.pose_weight >= 0:
            raise ValueError(f"pose_weight: expected >= 0, got {self.pose_weight}")
        object.__setattr__(self, "pose_state", tuple(self.pose_state))
        if bool(self.pose_state) != (self.pose_weight > 0):
            raise ValueError(
                f"pose_state: expected state slice names exactly when pose_weight > 0, got "
                f"{list(self.pose_state)} with pose_weight {self.pose_weight}"
            )
        if int(self.pose_pretrain_iterations) < 0:
            raise ValueError(f"pose_pretrain_iterations: expected >= 0, got {self.pose_pretrain_iterations}")
        if self.pose_pretrain_iterations > 0 and self.pose_weight == 0:
            raise ValueError(f"pose_pretrain_iterations: {self.pose_pretrain_iterations} needs pose_weight > 0 "
                             f"(pose targets to pretrain on); got pose_weight 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule: expected one of {LR_SCHEDULES}, got {self.lr_schedule!r}")


@dataclass(frozen=True)
class SStepProgress:
    """mean_loss: the last minibatch's loss per (t, i, j) tuple; phase: "policy", or "pose pretraining"
    (where mean_loss is the pose term alone)."""

    iteration: int
    iterations: int
    mean_loss: float
    elapsed_s: float
    eta_s: float
    phase: str = "policy"


def precision_weighted_loss(mu_pi: torch.Tensor, target: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """(mu_pi - target)^T precision (mu_pi - target) per row: mu_pi, target [B, dU]; precision [B, dU, dU] -> [B]."""
    diff = mu_pi - target
    return torch.einsum("bi,bij,bj->b", diff, precision, diff)


def closed_form_covariance(precision: np.ndarray) -> np.ndarray:
    """Sigma [dU, dU] = (mean of precision [..., dU, dU])^{-1}: the minimiser of sum tr(C^-1 Sigma) - log|Sigma|."""
    mean_precision = precision.reshape(-1, *precision.shape[-2:]).mean(axis=0)
    cov = np.linalg.inv(mean_precision)
    return 0.5 * (cov + cov.T)


class SStep:
    """Trains ``policy`` in place; keeps the network and the Adam state between calls (warm start)."""

    def __init__(self, policy: GaussianPolicy, config: SStepConfig | None = None) -> None:
        self.policy = policy
        self.config = config or SStepConfig()
        self.optimizer = torch.optim.Adam(
            policy.network.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.generator = torch.Generator().manual_seed(self.config.seed)
        if self.config.pose_weight > 0 and not policy.architecture.pose_dim:
            raise ValueError(f"pose_weight: {self.config.pose_weight} needs a policy with a pose head "
                             f"(architecture.pose_dim > 0); got pose_dim 0")

    def update(
        self,
        obs: np.ndarray,
        target_mu: np.ndarray,
        precision: np.ndarray,
        pose: np.ndarray | None = None,
        progress: Callable[[SStepProgress], None] | None = None,
    ) -> float:
        """One S-step on obs [N, T, dO], local-policy mean actions target_mu [N, T, dU] at
        those samples, and local-policy precisions C_ti^{-1} [N, T, dU, dU] (repeated for
        the samples of one condition); pose [N, T, pose_dim]: the pose head's targets, given
        exactly when config.pose_weight > 0. Returns the final policy loss (without the pose
        term) summed over all (t, i, j). Inputs are checked before anything changes.
        """
        with torch_threads(self.config.cpu_threads):
            return self._update(obs, target_mu, precision, pose, progress)

    def _update(self, obs, target_mu, precision, pose, progress) -> float:
        policy, cfg = self.policy, self.config
        obs = check_array("obs", obs, (None, None, policy.dO))
        N, T, _ = obs.shape
        target_mu = check_array("target_mu", target_mu, (N, T, policy.dU))
        precision = check_array("precision", precision, (N, T, policy.dU, policy.dU))
        check_positive_definite("precision", precision)
        pose = self._check_pose(pose, N, T)

        first_call = not policy.normalization.fitted
        if first_call:
            policy.set_normalization(Normalization.fit(obs, policy.architecture))
        policy.set_covariance(closed_form_covariance(precision))

        M = N * T
        device = policy.device
        o = torch.tensor(obs.reshape(M, -1), dtype=torch.float32, device=device)
        mu = torch.tensor(target_mu.reshape(M, -1), dtype=torch.float32, device=device)
        prec = torch.tensor(precision.reshape(M, policy.dU, policy.dU), dtype=torch.float32, device=device)

        policy.network.train()
        if pose is None:
            def policy_loss(idx):
                return precision_weighted_loss(policy.mean(o[idx]), mu[idx], prec[idx]).mean()
        else:
            pose = pose.reshape(M, -1)
            shift, scale = standardization(pose)
            z = torch.tensor((pose - shift) * scale, dtype=torch.float32, device=device)

            def pose_loss(pose_pi, idx):
                return cfg.pose_weight * (pose_pi - z[idx]).square().sum(dim=1).mean()

            def policy_loss(idx):
                mu_pi, pose_pi = policy.mean_and_pose(o[idx])
                return precision_weighted_loss(mu_pi, mu[idx], prec[idx]).mean() + pose_loss(pose_pi, idx)

            if first_call and cfg.pose_pretrain_iterations:
                self._descend(M, cfg.pose_pretrain_iterations, lambda idx: pose_loss(policy.mean_and_pose(o[idx])[1], idx),
                              progress, "pose pretraining")
        self._descend(M, cfg.iterations, policy_loss, progress, "policy")
        policy.network.eval()
        return self._full_loss(o, mu, prec)

    def _descend(self, M: int, steps: int, batch_loss: Callable[[torch.Tensor], torch.Tensor],
                 progress: Callable[[SStepProgress], None] | None, phase: str) -> None:
        """steps Adam steps on batch_loss(row indices [B]) over minibatches drawn without replacement from M rows."""
        cfg = self.config
        batch = min(cfg.batch_size, M)
        order = torch.randperm(M, generator=self.generator).to(self.policy.device)
        cursor = 0
        schedule = self._lr_schedule(steps)
        start = time.perf_counter()
        for it in range(1, steps + 1):
            if cursor + batch > M:
                order = torch.randperm(M, generator=self.generator).to(self.policy.device)
                cursor = 0
            idx = order[cursor : cursor + batch]
            cursor += batch
            loss = batch_loss(idx)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if schedule is not None:
                schedule.step()
            if progress is not None and (it % cfg.progress_every == 0 or it == steps):
                elapsed = time.perf_counter() - start
                progress(SStepProgress(it, steps, loss.item(), elapsed, elapsed / it * (steps - it), phase))

    def _check_pose(self, pose: np.ndarray | None, N: int, T: int) -> np.ndarray | None:
        if self.config.pose_weight == 0:
            if pose is not None:
                raise ValueError("pose: given, but pose_weight is 0 (set pose_weight > 0 to train the pose head)")
            return None
        if pose is None:
            raise ValueError(f"pose: pose_weight is {self.config.pose_weight}, which needs pose targets "
                             f"[N, T, pose_dim]; none were given")
        return check_array("pose", pose, (N, T, self.policy.architecture.pose_dim))

    def _lr_schedule(self, steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
        """Every phase of a call starts at cfg.lr (the previous one may have annealed it to 0)."""
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] = self.config.lr
        if self.config.lr_schedule == "constant":
            return None
        return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=steps)

    def _full_loss(self, obs: torch.Tensor, target_mu: torch.Tensor, precision: torch.Tensor, chunk: int = 8192) -> float:
        """Loss summed over rows of obs [M, dO], target_mu [M, dU], precision [M, dU, dU] (device tensors)."""
        total = 0.0
        with torch.no_grad():
            for s in range(0, obs.shape[0], chunk):
                sl = slice(s, s + chunk)
                total += float(precision_weighted_loss(self.policy.mean(obs[sl]), target_mu[sl], precision[sl]).sum())
        return total

    def state_dict(self) -> dict:
        """Optimizer and minibatch-sampler state, for resuming a run from a checkpoint."""
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
