"""Checkpoints: everything needed to continue a training run exactly, written atomically.

``<dir>/checkpoint.pkl`` is a pickle of a dict: format, config (TrainConfig.to_dict()),
iteration (completed), algorithm (the whole algorithm object: local policies, dynamics
priors with their buffers, step multipliers, η, global policy and optimiser state when it
has them), rng_state (the trainer's numpy bit-generator state), history (IterationMetrics
dicts), next_trial_id and samples_total. It is written to a temp file in the same folder,
fsync'ed and renamed over the old one, so a kill at any moment leaves either the previous
or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from gps_ros.atomic_io import atomic_write

FORMAT = "gps_ros.checkpoint/1"
FILENAME = "checkpoint.pkl"


@dataclass
class TrainerState:
    """iteration: iterations completed; rng_state: numpy bit-generator state of the
    trainer's seed stream; history: one IterationMetrics per completed iteration;
    next_trial_id: the id the next trial gets (ROS: after every recorded trial)."""

    iteration: int
    algorithm: object
    rng_state: dict
    history: list = field(default_factory=list)
    next_trial_id: int = 1
    samples_total: int = 0


def checkpoint_file(directory: str | os.PathLike) -> Path:
    return Path(directory) / FILENAME


def save_checkpoint(directory: str | os.PathLike, state: TrainerState, config: dict) -> Path:
    """Write ``state`` (and the run's config) to ``directory``/checkpoint.pkl atomically."""
    target = checkpoint_file(directory)
    payload = {"format": FORMAT, "config": config, **vars(state)}
    payload["history"] = [vars(m) for m in state.history]
    with atomic_write(target, "wb") as stream:
        pickle.dump(payload, stream, protocol=pickle.HIGHEST_PROTOCOL)
    return target


def load_checkpoint(directory: str | os.PathLike) -> tuple[TrainerState, dict]:
    """(state, config dict) from ``directory``/checkpoint.pkl; ValueError naming the path
    when it is missing, unreadable or not a gps_ros checkpoint."""
    from gps_ros.training.trainer import IterationMetrics

    path = checkpoint_file(directory)
    if not path.is_file():
        raise ValueError(f"resume: expected a checkpoint file {path} (written after every iteration), found none")
    try:
        with open(path, "rb") as stream:
            payload = pickle.load(stream)
    except Exception as err:
        raise ValueError(f"resume: {path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    keys = {"format", "config", "iteration", "algorithm", "rng_state", "history", "next_trial_id", "samples_total"}
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not keys <= set(payload):
        raise ValueError(f"resume: {path} is not a {FORMAT} checkpoint (missing or wrong format/keys)")
    history = [IterationMetrics(**m) for m in payload["history"]]
    state = TrainerState(int(payload["iteration"]), payload["algorithm"], payload["rng_state"], history,
                         int(payload["next_trial_id"]), int(payload["samples_total"]))
    return state, payload["config"]
