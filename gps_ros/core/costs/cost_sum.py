"""Weighted sum of costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gps_ros.core.costs.base import Cost, CostExpansion
from gps_ros.core.costs.config_checks import check_scalar, check_vector
from gps_ros.core.samples import SampleBatch


@dataclass(frozen=True, eq=False)
class CostSum:
    """``sum_i weights[i] * costs[i]``; costs: at least one; weights: [len(costs)] (default ones)."""

    costs: Sequence[Cost]
    weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        costs = tuple(self.costs)
        if not costs:
            raise ValueError("costs: expected at least one cost, got none")
        for i, cost in enumerate(costs):
            if not isinstance(cost, Cost):
                raise ValueError(f"costs[{i}]: expected a cost with expand(samples), got {type(cost).__name__}")
        weights = [1.0] * len(costs) if self.weights is None else self.weights
        check_vector("weights", weights, len(costs))
        object.__setattr__(self, "costs", costs)
        object.__setattr__(self, "weights", tuple(check_scalar(f"weights[{i}]", w) for i, w in enumerate(weights)))

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Expansion ``[N, T, ...]``: the weighted sum of the terms' expansions."""
        total = self.costs[0].expand(samples).scaled(self.weights[0])
        for cost, weight in zip(self.costs[1:], self.weights[1:]):
            total = total + cost.expand(samples).scaled(weight)
        return total
