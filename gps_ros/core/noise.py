"""Exploration noise for linear-Gaussian policies: standard normal, optionally smoothed in time."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def draw_noise(
    rng: np.random.Generator, N: int, T: int, dU: int, smooth_sigma: float = 0.0, renorm: bool = True
) -> np.ndarray:
    """Noise [N, T, dU]: i.i.d. N(0, 1), smoothed along time by a Gaussian filter of width smooth_sigma (steps).

    With renorm, each time step is divided by the filter's exact output standard
    deviation at that step (edges included), so every entry is marginally N(0, 1)
    again while keeping the temporal correlation.
    """
    if int(N) < 1 or int(T) < 1 or int(dU) < 1:
        raise ValueError(f"N, T, dU: expected positive integers, got N={N}, T={T}, dU={dU}")
    if not float(smooth_sigma) >= 0:
        raise ValueError(f"smooth_sigma: expected a number >= 0, got {smooth_sigma}")
    noise = rng.standard_normal((int(N), int(T), int(dU)))
    if smooth_sigma == 0:
        return noise
    noise = gaussian_filter1d(noise, float(smooth_sigma), axis=1, mode="nearest")
    if renorm:
        # The filter is a linear map S [T, T]; output variance at step t is Σ_j S[t, j]².
        S = gaussian_filter1d(np.eye(int(T)), float(smooth_sigma), axis=0, mode="nearest")
        noise /= np.sqrt(np.sum(S**2, axis=1))[None, :, None]
    return noise
