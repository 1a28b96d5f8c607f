"""Quantities of symmetric positive-definite matrices computed from their Cholesky factors."""

from __future__ import annotations

import numpy as np


def chol_inverse(chol: np.ndarray) -> np.ndarray:
    """A⁻¹ [..., d, d] from the lower Cholesky factors L [..., d, d] of A = L Lᵀ.

    A⁻¹ = L⁻ᵀ L⁻¹, symmetrised so that round-off leaves it exactly symmetric.
    """
    eye = np.broadcast_to(np.eye(chol.shape[-1]), chol.shape)
    chol_inv = np.linalg.solve(chol, eye)
    inv = np.swapaxes(chol_inv, -1, -2) @ chol_inv
    return 0.5 * (inv + np.swapaxes(inv, -1, -2))


def chol_log_det(chol: np.ndarray) -> np.ndarray:
    """log|A| [...] from the lower Cholesky factors L [..., d, d] of A = L Lᵀ."""
    return 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
