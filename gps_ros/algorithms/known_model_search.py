"""What the known-model policy searches share (variational GPS, constrained GPS, the direct search):
the DDP solutions of Alg. 1 line 1 from each initial state, one constructor, rollouts of the policy
on the model, samples from q's marginals, the maximum-likelihood fit of π to them, and where each
trajectory optimisation starts.

Neither paper says where the trajectory step's iLQG starts. From q_i's previous mean ("previous")
it stays in the basin of the line-1 DDP solution, a gait a small policy may not reproduce; from the
actions of π's own deterministic rollout ("policy") it improves the gait π already produces
(swimmer, 5 hidden units, dev seeds not reported: VGPS 0.71 and 1.00 × the DDP cost at iteration
50 from π's rollout against 1.42 × from q's mean; CGPS 0.92 × at iteration 20 against 2.0 ×).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from gps_ros.core.costs.base import Cost, value_around
from gps_ros.core.ilqg import ILQGResult, ILQGSettings, ilqg
from gps_ros.core.known_model import DynamicsModel
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.traj_distribution import TrajectoryDistribution
from gps_ros.core.validation import check_array
from gps_ros.policies.softplus_policy import PolicyFitSettings, SoftplusPolicy


def initial_ddp(
    model: DynamicsModel, cost: Cost, policy: SoftplusPolicy, x0: np.ndarray, U_init: np.ndarray | None,
    T: int | None, settings: ILQGSettings, beta: float, inner: ILQGSettings, state_slices: Mapping[str, slice] | None,
) -> tuple[np.ndarray, list[ILQGResult]]:
    """Alg. 1 line 1 of both papers, after checking policy, x0 and U_init (check_initial_states):
    x0 [M, dX] and the DDP solution from each initial state, run with ``settings`` at cost weight
    beta (in VGPS and CGPS the schedule's first β) and the initial-state covariance and dynamics
    noise of the search's own trajectory step ``inner``, so that q starts as that step would leave it."""
    if (policy.dX, policy.dU) != (model.dX, model.dU):
        raise ValueError(f"policy: expected dX={model.dX}, dU={model.dU}, got dX={policy.dX}, dU={policy.dU}")
    x0, U_init = check_initial_states(model, x0, U_init, T)
    settings = replace(settings, cost_weight=beta, initial_state_cov=inner.initial_state_cov,
                       dynamics_noise=inner.dynamics_noise)
    return x0, [ilqg(model, cost, x, U, settings, state_slices=state_slices) for x, U in zip(x0, U_init)]


def check_initial_states(model: DynamicsModel, x0: np.ndarray, U_init: np.ndarray | None, T: int | None) -> tuple[np.ndarray, np.ndarray]:
    """x0 [M, dX] and U_init [M, T, dU] (zeros [M, T, dU] when None, then T is required) validated."""
    x0 = check_array("x0", x0, (None, model.dX))
    if x0.shape[0] < 1:
        raise ValueError(f"x0: expected at least one initial state, got shape {list(x0.shape)}")
    if U_init is None:
        if T is None or int(T) < 1:
            raise ValueError(f"T: expected a positive integer when U_init is None, got {T}")
        return x0, np.zeros((x0.shape[0], int(T), model.dU))
    return x0, check_array("U_init", U_init, (x0.shape[0], None, model.dU))


TRAJECTORY_STARTS = ("policy", "previous")


def check_trajectory_start(name: str, value: str) -> None:
    if value not in TRAJECTORY_STARTS:
        raise ValueError(f"{name}: expected one of {TRAJECTORY_STARTS}, got {value!r}")


def sample_marginals(traj: TrajectoryDistribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples per time step from q's state-action marginals: [n, T, dX + dU] (PSD covariances allowed)."""
    evals, evecs = np.linalg.eigh(0.5 * (traj.sigma + np.swapaxes(traj.sigma, 1, 2)))
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))[:, None, :]
    eps = rng.standard_normal((n, *traj.mu.shape))
    return traj.mu + np.einsum("tij,ntj->nti", root, eps)


class NonFiniteActionError(ValueError):
    """A policy produced a non-finite action during a rollout."""


def policy_rollouts(model: DynamicsModel, policy: SoftplusPolicy, x0: np.ndarray, T: int,
                    noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """X [N, T, dX], U [N, T, dU] of the policy on the model from each of x0 [N, dX]: the mean
    policy when noise is None, else u = μ(x) + σ ⊙ noise for standard-normal noise [N, T, dU] (the
    policy's mean is evaluated for all N states at once). Raises NonFiniteActionError at the first
    non-finite action."""
    x0 = check_array("x0", x0, (None, model.dX))
    N = x0.shape[0]
    if noise is not None:
        noise = np.exp(policy.log_std.detach().numpy()) * check_array("noise", noise, (N, T, model.dU))
    X, U = np.empty((N, T, model.dX)), np.empty((N, T, model.dU))
    x = x0
    for t in range(T):
        X[:, t] = x
        U[:, t] = policy.mean(x) + (0.0 if noise is None else noise[:, t])
        if not np.all(np.isfinite(U[:, t])):
            raise NonFiniteActionError(f"policy: non-finite action at t={t}")
        x = np.stack([model.step(xn, un) for xn, un in zip(x, U[:, t])])
    return X, U


def summed_cost(cost: Cost, X: np.ndarray, U: np.ndarray, state_slices: Mapping[str, slice] | None = None) -> float:
    """Σ_t ℓ(x_t, u_t) (β = 1) of one trajectory X [T, dX], U [T, dU]."""
    return float(value_around(cost, X, U, state_slices=state_slices).sum())


class KnownModelSearch:
    """A policy search for the initial states x0 [M, dX] and one policy (trained in place) against a
    known model: model, the dynamics; cost, the task cost c; config, the search's settings (the
    class's ``default_config`` when None); U_init [M, T, dU], the actions DDP starts from (e.g. a
    demonstration; zeros of horizon T when None); state_slices, the state layout the cost refers to;
    seed, the search's RNG (``rng``). ``initial`` holds the DDP solutions of line 1, run with the
    settings, cost weight and trajectory-step settings that ``_initial_ddp_settings`` names;
    ``_start`` then sets up the search's own state."""

    default_config: ClassVar[Any] = None

    def __init__(
        self,
        model: DynamicsModel,
        cost: Cost,
        x0: np.ndarray,
        policy: SoftplusPolicy,
        config: Any = None,
        U_init: np.ndarray | None = None,
        T: int | None = None,
        state_slices: Mapping[str, slice] | None = None,
        seed: int = 0,
    ) -> None:
        config = self.default_config if config is None else config
        if config is None:
            raise TypeError(f"{type(self).__name__}: a KnownModelSearch subclass with a default_config is needed")
        settings, beta, inner = self._initial_ddp_settings(config)
        self.x0, self.initial = initial_ddp(model, cost, policy, x0, U_init, T, settings, beta, inner, state_slices)
        self.model, self.cost, self.policy, self.config = model, cost, policy, config
        self.state_slices = state_slices
        self.rng = np.random.default_rng(seed)
        self.k = 0
        self._start()

    def _initial_ddp_settings(self, config: Any) -> tuple[ILQGSettings, float, ILQGSettings]:
        """(line 1's iLQG settings, its cost weight, the trajectory step's settings) for config."""
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def state_samples(self, trajs: Sequence[TrajectoryDistribution]) -> np.ndarray:
        """[M, S, T, dX]: config.fit_samples states per time step from each q_i(x_t)."""
        return np.stack([sample_marginals(traj, self.config.fit_samples, self.rng)[..., : self.model.dX] for traj in trajs])

    def linearize_policy(self, traj: TrajectoryDistribution, X: np.ndarray, centre: np.ndarray | None = None) -> LinearGaussianPolicy:
        """π linearised per time step, its derivatives averaged over q's mean states X [T, dX] and
        config.linearization_samples samples from q's marginals traj (VGPS Sec. 4; none: at X
        alone); with centre [T, dX], over those states moved by centre − X, i.e. around centre
        with q's spread."""
        n = self.config.linearization_samples
        Z = sample_marginals(traj, n, self.rng)[..., : self.model.dX] if n else np.empty((0, *X.shape))
        if centre is not None:
            Z, X = Z + (centre - X), centre
        return self.policy.linearize(np.concatenate([X[None], Z]))

    def policy_cost(self, noise: np.ndarray | None = None) -> float:
        """Mean summed cost (β = 1) of π's rollouts on the model: its deterministic rollout from each
        x_i, or with standard-normal noise [n M, T, dU] (scaled by π's σ) n rollouts of the stochastic
        π from each x_i; +inf when an action or the cost is not finite."""
        T, M = self.initial[0].X.shape[0], len(self.x0)
        x0 = self.x0
        if noise is not None:
            noise = check_array("noise", noise, (None, T, self.model.dU))
            if len(noise) % M or not len(noise):
                raise ValueError(f"noise: expected a positive multiple of {M} rollouts (one per x_i), got {len(noise)}")
            x0 = np.repeat(self.x0, len(noise) // M, axis=0)
        try:
            X, U = policy_rollouts(self.model, self.policy, x0, T, noise)
        except NonFiniteActionError:
            return float("inf")
        total = sum(summed_cost(self.cost, Xi, Ui, self.state_slices) for Xi, Ui in zip(X, U))
        return total / len(x0) if np.isfinite(total) else float("inf")

    def fit_to_marginals(self, trajs: Sequence[TrajectoryDistribution], settings: PolicyFitSettings | None = None) -> float:
        """Fit π by maximum likelihood to config.fit_samples samples per time step from each q_i's
        state-action marginals (VGPS's M-projection), with ``settings`` (config.policy_fit when
        None); the final loss."""
        dX = self.model.dX
        Z = np.concatenate([sample_marginals(traj, self.config.fit_samples, self.rng) for traj in trajs])
        Z = Z.reshape(-1, Z.shape[-1])
        return self.policy.fit_max_likelihood(Z[:, :dX], Z[:, dX:], settings=settings or self.config.policy_fit)

    def trajectory_starts(self, previous_X: np.ndarray, previous_U: np.ndarray, start: str) -> tuple[np.ndarray, np.ndarray]:
        """States [M, T, dX] and actions [M, T, dU] of the trajectory each q_i's optimisation starts
        from: q_i's mean (previous_X, previous_U) when start is "previous" or π produces a non-finite
        action, else π's deterministic rollout from x_i."""
        if start == "previous":
            return previous_X, previous_U
        try:
            return policy_rollouts(self.model, self.policy, self.x0, previous_U.shape[1])
        except NonFiniteActionError:
            # A policy that diverges somewhere gives no trajectory to improve; q's own mean still is one.
            return previous_X, previous_U
