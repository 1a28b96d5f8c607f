"""The l2 + l1 (smoothed) distance penalty shared by the state and end-effector costs."""

from __future__ import annotations

import numpy as np


def l1_l2_penalty(
    d: np.ndarray, weights: np.ndarray, l1: float, l2: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penalty ``l(d) = 0.5 l2 ||w∘d||^2 + l1 sqrt(alpha + ||w∘d||^2)`` and its exact derivatives.

    d: [..., dP]; weights w: [dP]. Returns l: [...], dl/dd: [..., dP], d2l/dd2: [..., dP, dP].
    The l1 term (a smoothed norm, alpha > 0) gives a sharp pull near the target that the
    quadratic alone lacks (Levine & Abbeel 2014).
    """
    w2 = weights**2
    v = w2 * d  # gradient of 0.5 ||w∘d||^2
    sq = np.sum(v * d, axis=-1)
    root = np.sqrt(alpha + sq)
    l = 0.5 * l2 * sq + l1 * root
    scale = l2 + l1 / root  # [...]
    dl = scale[..., None] * v
    ddl = scale[..., None, None] * (w2 * np.eye(d.shape[-1])) \
        - (l1 / root**3)[..., None, None] * (v[..., :, None] * v[..., None, :])
    return l, dl, ddl
