"""KL divergence between the trajectory distributions of two linear-Gaussian policies (MDGPS App. A)."""

from __future__ import annotations

import numpy as np

from gps_ros.core.gaussian import chol_log_det
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.traj_distribution import TrajectoryDistribution


def policy_kl_per_step(
    p: LinearGaussianPolicy, p_bar: LinearGaussianPolicy, traj: TrajectoryDistribution
) -> np.ndarray:
    """E_{p(x_t)} KL(p(u|x_t) ‖ p̄(u|x_t)) for each t, [T]; traj holds the state marginals of p."""
    if p.K.shape != p_bar.K.shape:
        raise ValueError(f"p_bar.K: expected shape {list(p.K.shape)} to match p, got {list(p_bar.K.shape)}")
    if traj.mu.shape != (p.T, p.dX + p.dU):
        raise ValueError(f"traj.mu: expected shape [{p.T}, {p.dX + p.dU}], got {list(traj.mu.shape)}")
    return gaussian_policy_kl(
        p.K, p.k, p.cov, chol_log_det(p.chol_cov), p_bar.K, p_bar.k, p_bar.inv_cov, chol_log_det(p_bar.chol_cov),
        traj.mu_x, traj.sigma_x,
    )


def policy_kl(p: LinearGaussianPolicy, p_bar: LinearGaussianPolicy, traj: TrajectoryDistribution) -> float:
    """D_KL(p(τ) ‖ p̄(τ)) = Σ_t E_{p(x_t)} KL(p(u|x_t) ‖ p̄(u|x_t)); traj holds the state marginals of p."""
    return float(policy_kl_per_step(p, p_bar, traj).sum())


def gaussian_policy_kl(K, k, cov, logdet_cov, K_bar, k_bar, inv_cov_bar, logdet_cov_bar, mu_x, sigma_x) -> np.ndarray:
    """Array form of policy_kl_per_step: K [T, dU, dX], k [T, dU], cov/inv_cov_bar [T, dU, dU],
    logdet_cov/logdet_cov_bar [T], mu_x [T, dX], sigma_x [T, dX, dX] → [T]."""
    dK = K - K_bar
    dmu = np.einsum("tij,tj->ti", dK, mu_x) + k - k_bar
    Cbar_inv_dK = inv_cov_bar @ dK
    return 0.5 * (
        np.einsum("tij,tji->t", inv_cov_bar, cov)
        + np.einsum("ti,ti->t", dmu, np.einsum("tij,tj->ti", inv_cov_bar, dmu))
        + np.einsum("tjk,tjk->t", dK, Cbar_inv_dK @ sigma_x)
        - K.shape[1]
        + logdet_cov_bar
        - logdet_cov
    )
