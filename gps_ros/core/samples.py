"""Batches of trajectory samples: X[N, T, dX], U[N, T, dU], obs[N, T, dO], noise[N, T, dU]."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gps_ros.core.validation import check_array


def slices_from_layout(layout: Sequence[tuple[str, int]]) -> dict[str, slice]:
    """Named contiguous slices from an ordered layout ``[(name, size), ...]``."""
    slices: dict[str, slice] = {}
    start = 0
    for name, size in layout:
        if name in slices:
            raise ValueError(f"layout: name {name!r} appears twice")
        if int(size) <= 0:
            raise ValueError(f"layout: size of {name!r} must be positive, got {size}")
        slices[name] = slice(start, start + int(size))
        start += int(size)
    return slices


@dataclass(frozen=True)
class SampleBatch:
    """N trajectories of length T.

    X: [N, T, dX] states; U: [N, T, dU] actions; obs: [N, T, dO] policy observations
    (defaults to X); noise: [N, T, dU] the standard-normal exploration noise that was
    used (zeros if none); state_slices / obs_slices name contiguous parts of x / obs
    (e.g. ``"joint_angles": slice(0, 7)``).
    """

    X: np.ndarray
    U: np.ndarray
    obs: np.ndarray | None = None
    noise: np.ndarray | None = None
    state_slices: Mapping[str, slice] = field(default_factory=dict)
    obs_slices: Mapping[str, slice] = field(default_factory=dict)
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = check_array("X", self.X, (None, None, None))
        N, T, dX = X.shape
        if N < 1 or T < 1:
            raise ValueError(f"X: expected at least one sample of at least one step, got shape {list(X.shape)}")
        U = check_array("U", self.U, (N, T, None))
        obs = X if self.obs is None else check_array("obs", self.obs, (N, T, None))
        noise = np.zeros_like(U) if self.noise is None else check_array("noise", self.noise, (N, T, U.shape[2]))
        for fname, slices, dim in (("state_slices", self.state_slices, dX), ("obs_slices", self.obs_slices, obs.shape[2])):
            for key, sl in slices.items():
                if not isinstance(sl, slice) or sl.start is None or sl.stop is None or not 0 <= sl.start < sl.stop <= dim:
                    raise ValueError(f"{fname}[{key!r}]: expected a slice within [0, {dim}), got {sl}")
        extras = {key: check_array(f"extras[{key!r}]", val, (N, T) + (None,) * (np.ndim(val) - 2), dtype=np.asarray(val).dtype)
                  for key, val in self.extras.items()}
        object.__setattr__(self, "extras", extras)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "U", U)
        object.__setattr__(self, "obs", obs)
        object.__setattr__(self, "noise", noise)
        object.__setattr__(self, "state_slices", dict(self.state_slices))
        object.__setattr__(self, "obs_slices", dict(self.obs_slices))

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @property
    def T(self) -> int:
        return self.X.shape[1]

    @property
    def dX(self) -> int:
        return self.X.shape[2]

    @property
    def dU(self) -> int:
        return self.U.shape[2]

    @property
    def dO(self) -> int:
        return self.obs.shape[2]

    def state(self, name: str) -> np.ndarray:
        """The named part of the state, ``[N, T, size]``."""
        if name not in self.state_slices:
            raise KeyError(f"state slice {name!r} not defined; have {sorted(self.state_slices)}")
        return self.X[:, :, self.state_slices[name]]

    def __len__(self) -> int:
        return self.N

    def __getitem__(self, index: int | slice | np.ndarray) -> SampleBatch:
        """Sub-batch of samples (always keeps the sample axis)."""
        idx = np.atleast_1d(np.arange(self.N)[index])
        return SampleBatch(
            self.X[idx], self.U[idx], self.obs[idx], self.noise[idx], self.state_slices, self.obs_slices,
            {key: val[idx] for key, val in self.extras.items()},
        )

    @staticmethod
    def concatenate(batches: Sequence[SampleBatch]) -> SampleBatch:
        """Join batches with the same T, dimensions and layouts along the sample axis."""
        if not batches:
            raise ValueError("batches: expected at least one batch, got none")
        first = batches[0]
        for i, b in enumerate(batches[1:], start=1):
            if (
                (b.T, b.dX, b.dU, b.dO) != (first.T, first.dX, first.dU, first.dO)
                or b.state_slices != first.state_slices
                or set(b.extras) != set(first.extras)
            ):
                raise ValueError(
                    f"batches[{i}]: expected T={first.T}, dX={first.dX}, dU={first.dU}, dO={first.dO} and the same "
                    f"state layout and extras {sorted(first.extras)}, got T={b.T}, dX={b.dX}, dU={b.dU}, dO={b.dO}, "
                    f"extras {sorted(b.extras)}"
                )
        return SampleBatch(
            np.concatenate([b.X for b in batches]),
            np.concatenate([b.U for b in batches]),
            np.concatenate([b.obs for b in batches]),
            np.concatenate([b.noise for b in batches]),
            first.state_slices,
            first.obs_slices,
            {key: np.concatenate([b.extras[key] for b in batches]) for key in first.extras},
        )


TRIAL_COMPLETE = "complete"
TRIAL_ABORTED = "aborted"


@dataclass(frozen=True)
class TrialRecord:
    """One executed trial as the recorder stores it.

    sample: the recorded steps (N = 1, T = steps completed); stamps_ns: [T] int64
    measurement times in nanoseconds; status: ``"complete"`` or ``"aborted"`` with
    ``abort_reason`` saying why.
    """

    trial_id: int
    condition: int
    horizon: int
    sample: SampleBatch
    stamps_ns: np.ndarray
    status: str = TRIAL_COMPLETE
    abort_reason: str = ""

    def __post_init__(self) -> None:
        if self.sample.N != 1:
            raise ValueError(f"sample: expected exactly one trajectory (N = 1), got N = {self.sample.N}")
        if self.status not in (TRIAL_COMPLETE, TRIAL_ABORTED):
            raise ValueError(f"status: expected {TRIAL_COMPLETE!r} or {TRIAL_ABORTED!r}, got {self.status!r}")
        if not 0 < self.sample.T <= self.horizon:
            raise ValueError(f"horizon: expected at least the {self.sample.T} recorded steps, got {self.horizon}")
        if self.status == TRIAL_COMPLETE and self.sample.T != self.horizon:
            raise ValueError(f"sample: a complete trial has horizon {self.horizon} steps, got {self.sample.T}")
        stamps = check_array("stamps_ns", self.stamps_ns, (self.sample.T,), dtype=np.int64)
        object.__setattr__(self, "stamps_ns", stamps)
