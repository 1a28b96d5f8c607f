"""Input checks shared by every layer: one place that words the errors.

Every check raises ``ValueError`` naming the field, what was expected and what was
given, so that bad input is refused before any state changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Dim = int | None  # None: any size along that axis


def check_array(
    name: str,
    value: object,
    shape: Sequence[Dim] | None = None,
    *,
    finite: bool = True,
    dtype: type = np.float64,
) -> np.ndarray:
    """Return ``value`` as an ndarray of ``dtype`` after checking shape and finiteness.

    ``shape`` entries of ``None`` accept any size on that axis. Raises ``ValueError``
    whose message names ``name``, the expected shape and the given one.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__} ({exc})") from None
    if shape is not None:
        expected = tuple(shape)
        if arr.ndim != len(expected) or any(e is not None and e != g for e, g in zip(expected, arr.shape)):
            want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
            raise ValueError(f"{name}: expected shape {want}, got {list(arr.shape)}")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name}: expected finite values, got {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}"
        )
    return arr


def check_positive_definite(name: str, matrices: np.ndarray) -> np.ndarray:
    """Check that every trailing square matrix in ``matrices [..., d, d]`` is symmetric PD.

    Returns the lower Cholesky factors ``[..., d, d]``; raises ``ValueError`` naming the
    first offending index.
    """
    mats = check_array(name, matrices)
    if mats.ndim < 2 or mats.shape[-1] != mats.shape[-2]:
        raise ValueError(f"{name}: expected square matrices [..., d, d], got shape {list(mats.shape)}")
    asym = np.abs(mats - np.swapaxes(mats, -1, -2)).max(axis=(-1, -2)) if mats.size else np.zeros(mats.shape[:-2])
    scale = np.maximum(1.0, np.abs(mats).max(axis=(-1, -2))) if mats.size else 1.0
    bad_sym = np.argwhere(np.atleast_1d(asym > 1e-8 * scale))
    if bad_sym.size:
        raise ValueError(f"{name}: expected symmetric matrices, matrix {tuple(int(i) for i in bad_sym[0])} is not")
    chol, ok = batched_cholesky(mats)
    if not np.all(ok):
        idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(~ok))[0])
        raise ValueError(f"{name}: expected positive-definite matrices, matrix {idx} is not")
    return chol


def batched_cholesky(mats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of ``mats [..., d, d]`` and a mask ``[...]`` of which succeeded.

    Uses numpy's batched factorisation when all succeed; falls back to per-matrix
    factorisation only to find the failures.
    """
    try:
        return np.linalg.cholesky(mats), np.ones(mats.shape[:-2], dtype=bool)
    except np.linalg.LinAlgError:
        flat = mats.reshape(-1, *mats.shape[-2:])
        out = np.zeros_like(flat)
        ok = np.zeros(len(flat), dtype=bool)
        for i, m in enumerate(flat):
            try:
                out[i] = np.linalg.cholesky(m)
                ok[i] = True
            except np.linalg.LinAlgError:
                pass
        return out.reshape(mats.shape), ok.reshape(mats.shape[:-2])
