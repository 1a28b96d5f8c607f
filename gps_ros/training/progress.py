"""Progress of a training run: what the trainer reports after every trial batch and phase
change (the learner node publishes it as gps_ros/LearnerStatus), and the ETA."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

PHASES = ("sampling", "waiting_for_reset", "dynamics", "clustering", "c_step", "s_step", "checkpoint", "done")


@dataclass(frozen=True)
class Progress:
    """The fields of gps_ros/LearnerStatus: iteration is the current one, 0-based;
    trials_done / trials_per_iteration count this iteration's training trials; mean_cost,
    success_rate (in [0, 1]) and seconds_remaining are NaN while unknown."""

    algorithm: str
    phase: str
    iteration: int
    max_iterations: int
    trials_done: int
    trials_per_iteration: int
    samples_total: int
    mean_cost: float = math.nan
    success_rate: float = math.nan
    seconds_remaining: float = math.nan
    message: str = ""

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase: expected one of {PHASES}, got {self.phase!r}")


class EtaClock:
    """Seconds left, from the mean duration of the iterations completed in this process
    (a resumed run starts a fresh estimate: earlier iterations ran elsewhere)."""

    def __init__(self) -> None:
        self._durations: list[float] = []
        self._started = time.monotonic()

    def start_iteration(self) -> None:
        self._started = time.monotonic()

    def end_iteration(self) -> float:
        """Duration of the iteration just completed."""
        seconds = time.monotonic() - self._started
        self._durations.append(seconds)
        return seconds

    def remaining(self, iterations_left: int, in_iteration: bool = False) -> float:
        """ETA for ``iterations_left`` more iterations, counting the current one's elapsed time
        against the first of them when ``in_iteration``; NaN before any iteration completed."""
        if not self._durations:
            return math.nan
        mean = sum(self._durations) / len(self._durations)
        elapsed = time.monotonic() - self._started if in_iteration else 0.0
        return max(mean * iterations_left - elapsed, 0.0)
