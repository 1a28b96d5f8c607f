"""Step-size adjustment from predicted vs actual improvement (MDGPS Sec. 4.2, App. B.3).

ℓ^a_b is the expected cost of policy a under the dynamics (and cost expansion) fitted at
iteration b, computed analytically (traj_distribution.expected_cost). With the previous
policy's cost ℓ^{k−1}_{k−1}, the new policy's predicted cost ℓ^k_{k−1} and its actual
cost ℓ^k_k, the quadratic model of the cost change gives

    multiplier' = multiplier · (ℓ^{k−1}_{k−1} − ℓ^k_{k−1}) / (2 (ℓ^k_k − ℓ^k_{k−1}))
                = multiplier · predicted / (2 (predicted − actual)),

with predicted = ℓ^{k−1}_{k−1} − ℓ^k_{k−1} and actual = ℓ^{k−1}_{k−1} − ℓ^k_k improvements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepSizeConfig:
    """min_mult/max_mult: range of the step multiplier; min_denominator: floor on 2·(predicted − actual)
    as a fraction of |predicted| (an improvement as good as predicted, or better, grows the step to max_mult)."""

    min_mult: float = 0.1
    max_mult: float = 10.0
    min_denominator: float = 1e-4

    def __post_init__(self) -> None:
        if not 0 < self.min_mult <= self.max_mult:
            raise ValueError(f"min_mult, max_mult: expected 0 < min_mult <= max_mult, got {self.min_mult}, {self.max_mult}")
        if not self.min_denominator > 0:
            raise ValueError(f"min_denominator: expected a positive number, got {self.min_denominator}")


def new_step_multiplier(
    multiplier: float,
    previous_cost: float,
    predicted_cost: float,
    actual_cost: float,
    config: StepSizeConfig = StepSizeConfig(),
) -> float:
    """The "classic" rule: multiplier' from ℓ^{k−1}_{k−1} (previous_cost), ℓ^k_{k−1} (predicted_cost), ℓ^k_k (actual_cost).

    previous_cost is the previous local policy's cost (traj-opt, BADMM) or the previous
    linearised global policy's cost ℓ^{k−1,π}_{k−1} (MDGPS). A predicted improvement
    that is not positive shrinks the step to min_mult.
    """
    for name, value in (
        ("multiplier", multiplier), ("previous_cost", previous_cost),
        ("predicted_cost", predicted_cost), ("actual_cost", actual_cost),
    ):
        if not np.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {value}")
    if not multiplier > 0:
        raise ValueError(f"multiplier: expected a positive number, got {multiplier}")
    predicted = previous_cost - predicted_cost
    if predicted <= 0:
        return config.min_mult
    denominator = max(2.0 * (actual_cost - predicted_cost), config.min_denominator * predicted)
    return float(np.clip(multiplier * predicted / denominator, config.min_mult, config.max_mult))


def new_step_multiplier_global(
    multiplier: float,
    previous_global_cost: float,
    predicted_cost: float,
    new_global_cost: float,
    config: StepSizeConfig = StepSizeConfig(),
) -> float:
    """The "global" rule: the classic rule with the new global policy's cost ℓ^{k,π}_k as the actual cost.

    previous_global_cost: ℓ^{k−1,π}_{k−1}; predicted_cost: ℓ^k_{k−1} of the new local policy.
    """
    return new_step_multiplier(multiplier, previous_global_cost, predicted_cost, new_global_cost, config)
