"""Task configuration: dataclasses parsed and checked from a task YAML file.

Every field error is a ``ValueError`` that names the field (``task.conditions.region``),
what was expected and what was given, raised before any model is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from numbers import Integral, Real
from typing import Any

import numpy as np

from gps_ros.core.validation import check_array

FEATURE_TYPES = ("joint_angles", "joint_velocities", "site_points", "site_velocities", "site_position")
REGION_TYPES = ("box", "annulus")


@dataclass(frozen=True)
class FeatureSpec:
    """One named slice of the state vector.

    type: joint_angles / joint_velocities (of the controlled joints), site_points
    (positions of ``sites`` minus the target site, along ``axes``), site_velocities
    (their world velocities; the target is static within a trial), site_position
    (absolute position of ``sites``, e.g. the target).
    """

    name: str
    type: str
    sites: tuple[str, ...] = ()
    axes: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class RegionSpec:
    """Where random target positions are drawn (world frame, metres).

    box: uniform in [low, high] (an axis with low == high stays fixed: a 2-D square
    is a box flat in z); annulus: uniform by area in r_min <= |p - center| <= r_max in
    the xy plane at center's height.
    """

    type: str
    low: tuple[float, float, float] = (0.0, 0.0, 0.0)
    high: tuple[float, float, float] = (0.0, 0.0, 0.0)
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    r_min: float = 0.0
    r_max: float = 0.0


@dataclass(frozen=True)
class ConditionSpec:
    """Fixed conditions (for the reset-based algorithms) and random ones (reset-free).

    fixed_targets: target positions [n, 3]; fixed_initial_qpos: initial joint angles
    [m, n_joints]; the fixed conditions pair them up (a list of length 1 is broadcast).
    target_region: random targets; initial_qpos_low/high: random initial joint angles
    (None: the default initial_qpos).
    """

    fixed_targets: np.ndarray
    fixed_initial_qpos: np.ndarray
    target_region: RegionSpec | None = None
    initial_qpos_low: np.ndarray | None = None
    initial_qpos_high: np.ndarray | None = None


@dataclass(frozen=True)
class RenderSpec:
    width: int = 64
    height: int = 64
    camera: str = "overview"


@dataclass(frozen=True)
class NoiseSpec:
    """Exploration noise: standard normal, smoothed along time by a Gaussian filter of
    smooth_sigma steps (0: white), rescaled to unit variance when renorm."""

    smooth_sigma: float = 0.0
    renorm: bool = True


@dataclass(frozen=True)
class SuccessSpec:
    """Success: the ee point ``point`` ends within ``threshold`` metres of the target."""

    point: int = 0
    threshold: float = 0.05


@dataclass(frozen=True)
class TaskConfig:
    name: str
    model: str
    dt: float
    T: int
    substeps: int
    joints: tuple[str, ...]
    target_body: str
    target_site: str
    state: tuple[FeatureSpec, ...]
    obs: tuple[str, ...]
    initial_qpos: np.ndarray
    conditions: ConditionSpec
    success: SuccessSpec
    cost: Mapping[str, Any]
    render: RenderSpec = field(default_factory=RenderSpec)
    noise: NoiseSpec = field(default_factory=NoiseSpec)


def parse_task_config(raw: Mapping[str, Any]) -> TaskConfig:
    """Check a task dictionary (as loaded from YAML) and build its TaskConfig."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"task: expected a mapping, got {type(raw).__name__}")
    known = set(TaskConfig.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"task: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
    name = _str(raw, "name", "task")
    joints = tuple(_str_list(raw, "joints", "task"))
    state = tuple(_feature(f, f"task.state[{i}]") for i, f in enumerate(_list(raw, "state", "task")))
    names = [f.name for f in state]
    if len(set(names)) != len(names):
        raise ValueError(f"task.state: feature names must be unique, got {names}")
    obs = tuple(_str_list(raw, "obs", "task")) if "obs" in raw else tuple(names)
    for o in obs:
        if o not in names:
            raise ValueError(f"task.obs: {o!r} is not a state feature; expected some of {names}")
    initial_qpos = _vector(raw.get("initial_qpos"), "task.initial_qpos", len(joints))
    dt = _number(raw.get("dt"), "task.dt", minimum=0.0, strict=True)
    T = _integer(raw.get("T"), "task.T", minimum=1)
    substeps = _integer(raw.get("substeps"), "task.substeps", minimum=1)
    cost = raw.get("cost")
    if not isinstance(cost, Mapping):
        raise ValueError(f"task.cost: expected a mapping (a build_cost config), got {cost!r}")
    return TaskConfig(
        name=name,
        model=_str(raw, "model", "task"),
        dt=dt,
        T=T,
        substeps=substeps,
        joints=joints,
        target_body=_str(raw, "target_body", "task"),
        target_site=_str(raw, "target_site", "task"),
        state=state,
        obs=obs,
        initial_qpos=initial_qpos,
        conditions=_conditions(raw.get("conditions", {}), initial_qpos),
        success=_section(raw, "success", SuccessSpec, _SUCCESS_FIELDS),
        cost=dict(cost),
        render=_section(raw, "render", RenderSpec, _RENDER_FIELDS),
        noise=_section(raw, "noise", NoiseSpec, _NOISE_FIELDS),
    )


def _feature(raw: Any, where: str) -> FeatureSpec:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with name and type, got {raw!r}")
    ftype = _str(raw, "type", where)
    if ftype not in FEATURE_TYPES:
        raise ValueError(f"{where}.type: expected one of {FEATURE_TYPES}, got {ftype!r}")
    sites = tuple(_str_list(raw, "sites", where)) if ftype.startswith("site") else ()
    axes = raw.get("axes", (0, 1, 2))
    if (
        not isinstance(axes, Sequence)
        or isinstance(axes, str)
        or not axes
        or any(not isinstance(a, Integral) or isinstance(a, bool) or a not in (0, 1, 2) for a in axes)
        or len(set(axes)) != len(axes)
    ):
        raise ValueError(f"{where}.axes: expected a list of distinct axes from (0, 1, 2), got {axes!r}")
    axes = tuple(int(a) for a in axes)
    return FeatureSpec(name=_str(raw, "name", where), type=ftype, sites=sites, axes=axes)


def _conditions(raw: Any, initial_qpos: np.ndarray) -> ConditionSpec:
    where = "task.conditions"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {raw!r}")
    region = _region(raw["region"], f"{where}.region") if "region" in raw else None
    targets = _fixed_targets(raw.get("fixed_targets"), region, f"{where}.fixed_targets")
    qpos_list = raw.get("fixed_initial_qpos")
    qpos = initial_qpos[None] if qpos_list is None else _matrix(qpos_list, f"{where}.fixed_initial_qpos", initial_qpos.size)
    if len(targets) > 1 and len(qpos) > 1 and len(targets) != len(qpos):
        raise ValueError(
            f"{where}: fixed_targets ({len(targets)}) and fixed_initial_qpos ({len(qpos)}) must have the same "
            "length or one of them length 1"
        )
    low = raw.get("initial_qpos_low")
    high = raw.get("initial_qpos_high")
    if (low is None) != (high is None):
        raise ValueError(f"{where}: give both initial_qpos_low and initial_qpos_high or neither")
    if low is not None:
        low = _vector(low, f"{where}.initial_qpos_low", initial_qpos.size)
        high = _vector(high, f"{where}.initial_qpos_high", initial_qpos.size)
        if np.any(high < low):
            raise ValueError(f"{where}.initial_qpos_high: expected >= initial_qpos_low elementwise, got {high.tolist()}")
    return ConditionSpec(targets, qpos, region, low, high)


def _region(raw: Any, where: str) -> RegionSpec:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {raw!r}")
    rtype = _str(raw, "type", where)
    if rtype == "box":
        low = tuple(_vector(raw.get("low"), f"{where}.low", 3))
        high = tuple(_vector(raw.get("high"), f"{where}.high", 3))
        if any(h < lo for lo, h in zip(low, high)):
            raise ValueError(f"{where}.high: expected >= low elementwise, got low {list(low)}, high {list(high)}")
        return RegionSpec("box", low=low, high=high)
    if rtype == "annulus":
        r_min = _number(raw.get("r_min"), f"{where}.r_min", minimum=0.0)
        r_max = _number(raw.get("r_max"), f"{where}.r_max", minimum=0.0, strict=True)
        if not r_min < r_max:
            raise ValueError(f"{where}: expected 0 <= r_min < r_max, got r_min={r_min}, r_max={r_max}")
        return RegionSpec("annulus", center=tuple(_vector(raw.get("center"), f"{where}.center", 3)), r_min=r_min, r_max=r_max)
    raise ValueError(f"{where}.type: expected one of {REGION_TYPES}, got {rtype!r}")


def _fixed_targets(raw: Any, region: RegionSpec | None, where: str) -> np.ndarray:
    """corners / grid (3 per free axis) of a box region, a circle, or an explicit list."""
    if isinstance(raw, str):
        if raw not in ("corners", "grid") or region is None or region.type != "box":
            raise ValueError(f"{where}: {raw!r} needs a box region and is one of 'corners', 'grid'")
        low, high = np.array(region.low), np.array(region.high)
        levels = [0.0, 1.0] if raw == "corners" else [0.0, 0.5, 1.0]
        axes = [levels if h > lo else [0.0] for lo, h in zip(low, high)]
        frac = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        return low + frac * (high - low)
    if isinstance(raw, Mapping) and "circle" in raw:
        circle = raw["circle"]
        if not isinstance(circle, Mapping):
            raise ValueError(f"{where}.circle: expected a mapping with center, radius and n, got {circle!r}")
        center = _vector(circle.get("center"), f"{where}.circle.center", 3)
        radius = _number(circle.get("radius"), f"{where}.circle.radius", minimum=0.0, strict=True)
        n = _integer(circle.get("n"), f"{where}.circle.n", minimum=1)
        angle = 2 * np.pi * np.arange(n) / n
        return center + radius * np.stack([np.cos(angle), np.sin(angle), np.zeros(n)], axis=1)
    if raw is None:
        raise ValueError(f"{where}: expected 'corners', 'grid', {{circle: ...}} or a list of [x, y, z], got None")
    return _matrix(raw, where, 3)


def _section(raw: Mapping[str, Any], key: str, cls: type, checks: Mapping[str, Callable[[Any, str], Any]]) -> Any:
    """Build ``cls`` from the optional mapping raw[key], each given field passed through its check."""
    sub = raw.get(key, {})
    if not isinstance(sub, Mapping):
        raise ValueError(f"task.{key}: expected a mapping, got {sub!r}")
    unknown = set(sub) - set(checks)
    if unknown:
        raise ValueError(f"task.{key}: unknown keys {sorted(unknown)}; expected some of {sorted(checks)}")
    return cls(**{name: checks[name](value, f"task.{key}.{name}") for name, value in sub.items()})


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    return _name(raw.get(key), f"{where}.{key}")


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key}: expected a non-empty list, got {value!r}")
    return list(value)


def _str_list(raw: Mapping[str, Any], key: str, where: str) -> list[str]:
    values = _list(raw, key, where)
    if not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{where}.{key}: expected a list of names, got {values!r}")
    return values


def _number(value: Any, where: str, minimum: float | None = None, strict: bool = False) -> float:
    """A real number (not a bool), >= minimum (> when strict) if minimum is given."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{where}: expected a finite number{bound}, got {value!r}")
    return float(value)


def _integer(value: Any, where: str, minimum: int) -> int:
    """An integer (not a bool, not a float: a fractional value would be silently truncated) >= minimum."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value


_RENDER_FIELDS = {"width": partial(_integer, minimum=1), "height": partial(_integer, minimum=1), "camera": _name}
_NOISE_FIELDS = {"smooth_sigma": partial(_number, minimum=0.0), "renorm": _flag}
_SUCCESS_FIELDS = {"point": partial(_integer, minimum=0), "threshold": partial(_number, minimum=0.0, strict=True)}


def _vector(value: Any, where: str, size: int) -> np.ndarray:
    return check_array(where, value, (size,))


def _matrix(value: Any, where: str, cols: int) -> np.ndarray:
    arr = check_array(where, value, (None, cols))
    if len(arr) == 0:
        raise ValueError(f"{where}: expected at least one row, got none")
    return arr
