"""Timing of the per-iteration dynamics fit at the MDGPS peg size.

One GPS iteration, per condition: add the new samples to the GMM prior's buffer and
refit it (warm start), then fit the per-time-step dynamics with that prior. Samples
come from a fixed random mildly nonlinear system (x' = x + dt tanh(A x + B u) + noise)
driven by noisy linear feedback, so the mixture has structure to find.
Reported by `gps-ros bench core`.
"""

from __future__ import annotations

import time

import numpy as np

from gps_ros.core.dynamics_fit import fit_dynamics
from gps_ros.core.gmm import GMMConfig
from gps_ros.core.priors import DynamicsPriorConfig, DynamicsPriorGMM


def time_dynamics_fit(
    T: int = 100,
    dX: int = 26,
    dU: int = 7,
    conditions: int = 4,
    samples: int = 5,
    max_samples: int = 20,
    repeats: int = 7,
    shared_prior: bool = False,
    gmm: GMMConfig = GMMConfig(),
    seed: int = 0,
) -> dict[str, float | int | bool]:
    """Median wall time (ms) of prior update + fit_dynamics for all conditions.

    shared_prior: one prior fed every condition's samples (False: one prior per
    condition, as in the GPS reference code); gmm: the priors' EM settings (e.g.
    warm_max_iterations). The priors are warmed up (buffers full,
    mixtures fitted) before timing. Returns total_ms (median), update_ms and fit_ms
    (medians of their sums over conditions), min_ms, em_iterations (mean) and the sizes.
    """
    rng = np.random.default_rng(seed)
    system = _random_system(dX, dU, rng)
    x0 = rng.normal(scale=0.5, size=(conditions, dX))
    warmup = -(-max_samples // samples)
    batches = [[_rollout(system, x0[c], samples, T, rng) for c in range(conditions)] for _ in range(warmup + repeats)]
    n_priors = 1 if shared_prior else conditions
    priors = [DynamicsPriorGMM(DynamicsPriorConfig(max_samples=max_samples, gmm=gmm)) for _ in range(n_priors)]

    def iteration(batch: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, list[int]]:
        t0 = time.perf_counter()
        if shared_prior:
            priors[0].update(np.concatenate([X for X, _ in batch]), np.concatenate([U for _, U in batch]))
        else:
            for prior, (X, U) in zip(priors, batch):
                prior.update(X, U)
        t1 = time.perf_counter()
        for c, (X, U) in enumerate(batch):
            fit_dynamics(X, U, priors[0 if shared_prior else c])
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, [p.gmm.iterations for p in priors]

    for batch in batches[:warmup]:
        iteration(batch)
    runs = [iteration(batch) for batch in batches[warmup:]]
    update = np.array([r[0] for r in runs]) * 1e3
    fit = np.array([r[1] for r in runs]) * 1e3
    return {
        "total_ms": float(np.median(update + fit)),
        "min_ms": float(np.min(update + fit)),
        "update_ms": float(np.median(update)),
        "fit_ms": float(np.median(fit)),
        "em_iterations": float(np.mean([r[2] for r in runs])),
        "clusters": priors[0].gmm.n_clusters,
        "T": T, "dX": dX, "dU": dU, "conditions": conditions, "samples": samples,
        "max_samples": max_samples, "repeats": repeats, "shared_prior": shared_prior,
    }


def _random_system(dX: int, dU: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = rng.normal(scale=1.0 / np.sqrt(dX), size=(dX, dX)) - np.eye(dX)
    B = rng.normal(scale=1.0 / np.sqrt(dU), size=(dX, dU))
    K = rng.normal(scale=0.1 / np.sqrt(dX), size=(dU, dX))
    return A, B, K


def _rollout(system, x0: np.ndarray, N: int, T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    A, B, K = system
    dt = 0.05
    X = np.empty((N, T, len(x0)))
    U = np.empty((N, T, B.shape[1]))
    X[:, 0] = x0 + 0.01 * rng.standard_normal((N, len(x0)))
    for t in range(T):
        U[:, t] = X[:, t] @ -K.T + np.sin(0.05 * t) + 0.1 * rng.standard_normal((N, B.shape[1]))
        if t + 1 < T:
            X[:, t + 1] = X[:, t] + dt * np.tanh(X[:, t] @ A.T + U[:, t] @ B.T) + 1e-3 * rng.standard_normal(X[:, t].shape)
    return X, U
