"""Trajectory costs with analytic first and second derivatives, batched over samples and time."""

from gps_ros.core.costs.action import ActionCost
from gps_ros.core.costs.base import Cost, CostExpansion, expand_around
from gps_ros.core.costs.builder import COST_TYPES, build_cost
from gps_ros.core.costs.cost_sum import CostSum
from gps_ros.core.costs.penalty import l1_l2_penalty
from gps_ros.core.costs.ramps import RAMP_KINDS, ramp_weights
from gps_ros.core.costs.tracking import EndEffectorPointCost, PointPenaltyCost, StateCost

__all__ = [
    "COST_TYPES", "RAMP_KINDS", "ActionCost", "Cost", "CostExpansion", "CostSum", "EndEffectorPointCost",
    "PointPenaltyCost", "StateCost", "build_cost", "expand_around", "l1_l2_penalty", "ramp_weights",
]
