"""The training config (config/train/*.yaml) and its ``key:=value`` overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from gps_ros.resources import config_path

DEFAULT_CONFIG = "train/traj_opt_reacher.yaml"


@dataclass(frozen=True)
class InitialPolicyConfig:
    """PD controller holding each condition's initial pose: u = kp (q0 - q) - kd q̇ + noise."""

    kp: float = 1.0
    kd: float = 0.1
    noise_variance: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """task: a task name (config/tasks) or YAML path; algorithm: a name of the algorithm
    registry (gps_ros.training.registry); conditions: fixed condition indices;
    iterations: total iterations (a resumed run continues up to it); samples_per_condition:
    N per iteration; kl_step, min_step_mult, max_step_mult: the step size; evaluate: run
    each new local policy once per condition with mean actions after every iteration
    (false: success is measured on the iteration's samples); settings: algorithm-specific
    keys, checked by the algorithm's builder; output_dir: metrics, plot and checkpoint."""

    task: str
    algorithm: str = "traj_opt"
    conditions: Sequence[int] = (0,)
    iterations: int = 10
    samples_per_condition: int = 5
    seed: int = 0
    kl_step: float = 1.0
    min_step_mult: float = 0.1
    max_step_mult: float = 10.0
    initial_policy: InitialPolicyConfig = field(default_factory=InitialPolicyConfig)
    evaluate: bool = True
    settings: Mapping = field(default_factory=dict)
    output_dir: str = "runs/train"

    @staticmethod
    def from_dict(raw: Mapping, name: str = "train") -> TrainConfig:
        from gps_ros.training.registry import is_algorithm, unknown_algorithm

        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{name}.{unknown[0]}: unknown key; expected one of {sorted(known)}")
        if "task" not in raw:
            raise ValueError(f"{name}.task: required (a task name of config/tasks or a YAML path), got none")
        values = dict(raw)
        if "initial_policy" in values:
            pol = dict(values["initial_policy"] or {})
            pol_known = {f.name for f in fields(InitialPolicyConfig)}
            bad = sorted(set(pol) - pol_known)
            if bad:
                raise ValueError(f"{name}.initial_policy.{bad[0]}: unknown key; expected one of {sorted(pol_known)}")
            values["initial_policy"] = InitialPolicyConfig(**pol)
        if "conditions" in values:
            conditions = values["conditions"]
            if not isinstance(conditions, Sequence) or not conditions or any(
                    isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in conditions):
                raise ValueError(f"{name}.conditions: expected a non-empty list of condition indices >= 0, got {conditions!r}")
            values["conditions"] = tuple(conditions)
        if not isinstance(values.get("settings", {}), Mapping):
            raise ValueError(f"{name}.settings: expected a mapping of algorithm settings, got {values['settings']!r}")
        config = TrainConfig(**values)
        if not is_algorithm(config.algorithm):
            raise ValueError(f"{name}.{unknown_algorithm(config.algorithm)}")
        for key in ("iterations", "samples_per_condition"):
            value = getattr(config, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{key}: expected an integer >= 1, got {value!r}")
        return config

    def to_dict(self) -> dict:
        """Plain YAML/JSON types (lists, dicts)."""
        out = asdict(self)
        out["conditions"] = list(self.conditions)
        out["settings"] = dict(self.settings)
        return out


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read the YAML config (None: the default) and apply ``key:=value`` overrides (values parsed as YAML)."""
    file = Path(path) if path else config_path(DEFAULT_CONFIG)
    if not file.is_file():
        raise ValueError(f"config: expected a training config YAML file, got {file} (not found)")
    with open(file) as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"config: expected a YAML mapping in {file}, got {type(raw).__name__}")
    for key, value in parse_overrides(overrides).items():
        raw[key] = value
    return TrainConfig.from_dict(raw, name=str(file))


def parse_overrides(items: Sequence[str]) -> dict:
    """['iterations:=3', 'task:=reacher3'] -> {'iterations': 3, 'task': 'reacher3'} (values as YAML)."""
    values = {}
    for item in items:
        key, sep, value = item.partition(":=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected key:=value")
        values[key] = yaml.safe_load(value)
    return values
