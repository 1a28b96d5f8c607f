"""Build a cost from a plain mapping, as loaded from a YAML parameter file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from gps_ros.core.costs.action import ActionCost
from gps_ros.core.costs.base import Cost
from gps_ros.core.costs.cost_sum import CostSum
from gps_ros.core.costs.tracking import EndEffectorPointCost, StateCost

COST_TYPES: dict[str, type] = {"action": ActionCost, "state": StateCost, "ee_points": EndEffectorPointCost}


def build_cost(config: Mapping, name: str = "cost") -> Cost:
    """A cost from ``{"type": ..., <the cost's fields>}``.

    type "sum" takes ``terms: [{"weight": w (default 1), "type": ..., ...}, ...]``;
    the other types take the fields of their dataclass (``COST_TYPES``). Errors are
    ``ValueError`` naming the key's path from ``name`` (e.g. ``cost.terms[1].l2``).
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"{name}: expected a mapping with a 'type' key, got {type(config).__name__}")
    kind = config.get("type")
    if kind == "sum":
        return _build_sum(config, name)
    if kind not in COST_TYPES:
        raise ValueError(f"{name}.type: expected one of {sorted([*COST_TYPES, 'sum'])}, got {kind!r}")
    cls = COST_TYPES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(config, name, kind, ["type", *fields])
    for field in fields.values():
        if field.default is dataclasses.MISSING and field.name not in config:
            raise ValueError(f"{name}.{field.name}: required for cost type {kind!r}, missing")
    try:
        return cls(**{key: val for key, val in config.items() if key != "type"})
    except ValueError as exc:
        raise ValueError(f"{name}.{exc}") from None


def _build_sum(config: Mapping, name: str) -> CostSum:
    _check_keys(config, name, "sum", ["type", "terms"])
    terms = config.get("terms")
    if not isinstance(terms, Sequence) or isinstance(terms, str) or not terms:
        raise ValueError(f"{name}.terms: expected a non-empty list of cost mappings, got {terms!r}")
    costs, weights = [], []
    for i, term in enumerate(terms):
        term_name = f"{name}.terms[{i}]"
        if not isinstance(term, Mapping):
            raise ValueError(f"{term_name}: expected a mapping with a 'type' key, got {type(term).__name__}")
        costs.append(build_cost({key: val for key, val in term.items() if key != "weight"}, term_name))
        weights.append(term.get("weight", 1.0))
    try:
        return CostSum(costs, weights)
    except ValueError as exc:
        raise ValueError(f"{name}.terms[*].weight: {exc}") from None


def _check_keys(config: Mapping, name: str, kind: str, allowed: list[str]) -> None:
    for key in config:
        if key not in allowed:
            raise ValueError(f"{name}.{key}: unknown key for cost type {kind!r}; expected one of {sorted(allowed)}")
