"""Per-time-step linear-Gaussian regression with a GMM (normal-inverse-Wishart) prior.

Fits the dynamics x_{t+1} ~ N(F_t [x_t; u_t] + f_t, W_t) and the linearisation of the
global policy u_t ~ N(K_t x_t + k_t, C_t) from samples (Levine & Abbeel 2014, MDGPS
Sec. 3.1 and App. B). Both are one computation, vectorised over time steps: the MAP
joint Gaussian of [inputs; outputs] at each step, then conditioning on the inputs.
Without a prior the same code runs with zero pseudo-counts, i.e. plain (ridge)
regression.
"""

from __future__ import annotations

import numpy as np

from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.priors import DynamicsPriorGMM, GMMPrior, PolicyPriorGMM
from gps_ros.core.validation import check_array, check_positive_definite


def fit_dynamics(
    X: np.ndarray,
    U: np.ndarray,
    prior: DynamicsPriorGMM | None = None,
    regularization: float = 1e-6,
) -> LinearGaussianDynamics:
    """Fit F [T, dX, dX + dU], f [T, dX], W [T, dX, dX] to X [N, T, dX], U [N, T, dU].

    Entry t maps (x_t, u_t) to x_{t+1}; entry T-1 has no successor and copies entry
    T-2. regularization is added to the diagonal of the [x; u] covariance block.
    """
    X, U = _check_samples(X, U, "U", min_T=2)
    N, T, dX = X.shape
    _check_fit_inputs(N, dX + U.shape[2], prior, DynamicsPriorGMM, 2 * dX + U.shape[2], regularization)
    tuples = DynamicsPriorGMM.tuples_from(X, U).swapaxes(0, 1)  # [T-1, N, 2dX+dU]
    F, f, W = _regress(tuples, dX + U.shape[2], prior, regularization)
    # The last step has no successor; repeating the previous one keeps shapes aligned.
    return LinearGaussianDynamics(
        F=np.concatenate([F, F[-1:]]), f=np.concatenate([f, f[-1:]]), W=np.concatenate([W, W[-1:]])
    )


def fit_linearized_policy(
    X: np.ndarray,
    U_mean: np.ndarray,
    policy_cov: np.ndarray,
    prior: PolicyPriorGMM | None = None,
    regularization: float = 1e-6,
) -> LinearGaussianPolicy:
    """Linearise the global policy around samples: K [T, dU, dX], k [T, dU], cov [T, dU, dU].

    X: [N, T, dX] visited states; U_mean: [N, T, dU] the global policy's mean action at
    them; policy_cov: [T, dU, dU] or [dU, dU], the global policy's covariance, which
    becomes the linearisation's covariance (ALGORITHM_NOTES).
    """
    X, U_mean = _check_samples(X, U_mean, "U_mean", min_T=1)
    N, T, dX = X.shape
    dU = U_mean.shape[2]
    cov = check_array("policy_cov", policy_cov)
    if cov.shape not in ((dU, dU), (T, dU, dU)):
        raise ValueError(f"policy_cov: expected shape [{T}, {dU}, {dU}] or [{dU}, {dU}], got {list(cov.shape)}")
    check_positive_definite("policy_cov", cov)
    _check_fit_inputs(N, dX, prior, PolicyPriorGMM, dX + dU, regularization)
    tuples = PolicyPriorGMM.tuples_from(X, U_mean).swapaxes(0, 1)  # [T, N, dX+dU]
    K, k, _ = _regress(tuples, dX, prior, regularization)
    return LinearGaussianPolicy(K=K, k=k, cov=np.broadcast_to(cov, (T, dU, dU)).copy())


def fit_initial_state(X: np.ndarray, floor: float = 1e-6) -> InitialStateDistribution:
    """x_1 ~ N(mean of X[:, 0], their (maximum-likelihood) covariance + floor I) from X [N, T, dX]."""
    X = check_array("X", X, (None, None, None))
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X: expected at least one sample of at least one step, got shape {list(X.shape)}")
    if not np.isfinite(floor) or floor < 0:
        raise ValueError(f"floor: expected a finite value >= 0, got {floor}")
    x0 = X[:, 0]
    diff = x0 - x0.mean(axis=0)
    sigma = diff.T @ diff / len(x0) + floor * np.eye(X.shape[2])
    return InitialStateDistribution(mu=x0.mean(axis=0), sigma=sigma)


def _check_samples(X: np.ndarray, U: np.ndarray, u_name: str, min_T: int) -> tuple[np.ndarray, np.ndarray]:
    X = check_array("X", X, (None, None, None))
    N, T, dX = X.shape
    U = check_array(u_name, U, (N, T, None))
    if N < 1 or T < min_T or dX < 1 or U.shape[2] < 1:
        raise ValueError(
            f"X, {u_name}: expected N >= 1, T >= {min_T}, dX >= 1, dU >= 1, got X {list(X.shape)}, {u_name} {list(U.shape)}"
        )
    return X, U


def _check_fit_inputs(
    N: int, n_in: int, prior: GMMPrior | None, prior_type: type, dim: int, regularization: float
) -> None:
    if not np.isfinite(regularization) or regularization < 0:
        raise ValueError(f"regularization: expected a finite value >= 0, got {regularization}")
    if prior is None:
        # The empirical covariance of the inputs has rank N - 1: without a prior it needs
        # N > n_in, unless the ridge term makes it invertible.
        needed = 2 if regularization > 0 else n_in + 1
        if N < needed:
            raise ValueError(
                f"X: expected at least {needed} samples for a fit without prior "
                f"(regularization={regularization}, {n_in} regressors), got N={N}; pass a prior or regularization > 0"
            )
        return
    if not isinstance(prior, prior_type):
        raise ValueError(f"prior: expected a {prior_type.__name__} or None, got {type(prior).__name__}")
    if prior.dim not in (0, dim):
        raise ValueError(f"prior: expected one fitted on tuples of dimension {dim}, got dimension {prior.dim}")


def _regress(
    tuples: np.ndarray, n_in: int, prior: GMMPrior | None, regularization: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-step regression of the last D - n_in entries of tuples [B, N, D] on the first n_in.

    Returns gain [B, D - n_in, n_in], bias [B, D - n_in], cov [B, D - n_in, D - n_in].
    """
    mu, sigma = _joint_map(tuples, prior)
    return _condition(mu, sigma, n_in, regularization)


def _joint_map(tuples: np.ndarray, prior: GMMPrior | None) -> tuple[np.ndarray, np.ndarray]:
    """NIW MAP joint Gaussian per step: mu [B, D] (the empirical mean), sigma [B, D, D].

    sigma = (N S + m Phi + N m / (N + m) (mu - mu0)(mu - mu0)^T) / (N + n0), with S the
    empirical covariance; no prior means m = n0 = 0.
    """
    B, N, D = tuples.shape
    mu = tuples.mean(axis=1)
    if prior is None:
        mu0, Phi, m, n0 = np.zeros((1, D)), np.zeros((1, D, D)), 0.0, 0.0
    else:
        mu0, Phi, m, n0 = prior.eval_batch(tuples)
    # The mean-shift term rides along as one extra row of the scatter product:
    # [diff; c (mu - mu0)]^T [diff; c (mu - mu0)] = N S + c^2 (mu - mu0)(mu - mu0)^T.
    shift_row = np.sqrt(N * m / (N + m)) * (mu - mu0)[:, None, :]
    rows = np.concatenate([tuples - mu[:, None, :], np.broadcast_to(shift_row, (B, 1, D))], axis=1)
    sigma = np.swapaxes(rows, 1, 2) @ rows
    sigma += np.multiply(Phi, m, out=Phi)  # Phi is this call's own array: scale it in place
    sigma /= N + n0
    return mu, sigma


def _condition(
    mu: np.ndarray, sigma: np.ndarray, n_in: int, regularization: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Condition N(mu [B, D], sigma [B, D, D]) on its first n_in entries (ridge on that block)."""
    sigma_in = sigma[:, :n_in, :n_in] + regularization * np.eye(n_in)
    sigma_in_out = sigma[:, :n_in, n_in:]
    gain = np.swapaxes(np.linalg.solve(sigma_in, sigma_in_out), 1, 2)
    bias = mu[:, n_in:] - np.einsum("boi,bi->bo", gain, mu[:, :n_in])
    cov = sigma[:, n_in:, n_in:] - gain @ sigma_in_out
    return gain, bias, 0.5 * (cov + np.swapaxes(cov, 1, 2))
