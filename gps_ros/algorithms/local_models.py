"""Per-condition local models shared by the local-policy algorithms (traj_opt, MDGPS, BADMM).

One iteration of any of them starts the same way for each condition (Levine & Abbeel
2014; MDGPS App. B): refit the linear-Gaussian dynamics with the GMM prior, fit the
initial-state distribution, and average the cost expansion into one quadratic. Costs
ℓ^a_b of linear-Gaussian policies under such a model are computed analytically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gps_ros.core.costs.base import Cost, CostExpansion
from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.dynamics_fit import fit_dynamics, fit_initial_state
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.kl_lqr import CStepConfig
from gps_ros.core.priors import DynamicsPriorConfig, DynamicsPriorGMM
from gps_ros.core.samples import SampleBatch
from gps_ros.core.step_size import StepSizeConfig
from gps_ros.core.traj_distribution import QuadraticCost, TrajectoryDistribution, expected_cost, forward


@dataclass(frozen=True)
class LocalModelSettings:
    """The settings every local-policy algorithm's config starts with (each config subclasses
    this, overriding defaults where its paper differs): kl_step: ε per time step at step
    multiplier 1; initial_step_mult: the first multiplier; step_size: the multiplier's range;
    c_step: η search settings; dynamics_prior: GMM prior settings (None: plain ridge
    regression per time step); initial_state_floor: added to the fitted x_1 covariance."""

    kl_step: float = 1.0
    initial_step_mult: float = 1.0
    step_size: StepSizeConfig = field(default_factory=StepSizeConfig)
    c_step: CStepConfig = field(default_factory=CStepConfig)
    dynamics_prior: DynamicsPriorConfig | None = field(default_factory=DynamicsPriorConfig)
    initial_state_floor: float = 1e-6

    def __post_init__(self) -> None:
        if not self.kl_step > 0:
            raise ValueError(f"kl_step: expected a positive number, got {self.kl_step}")
        if not self.step_size.min_mult <= self.initial_step_mult <= self.step_size.max_mult:
            raise ValueError(
                f"initial_step_mult: expected a number in [{self.step_size.min_mult}, {self.step_size.max_mult}], "
                f"got {self.initial_step_mult}"
            )


@dataclass(frozen=True)
class LocalModel:
    """dynamics and x1 fitted to one condition's samples; cost: their averaged quadratic cost
    expansion; sample_cost: the samples' mean total cost."""

    dynamics: LinearGaussianDynamics
    x1: InitialStateDistribution
    cost: QuadraticCost
    sample_cost: float

    def trajectory(self, policy: LinearGaussianPolicy) -> TrajectoryDistribution:
        """State-action marginals of policy under this model's dynamics and x1."""
        return forward(policy, self.dynamics, self.x1)

    def policy_cost(self, policy: LinearGaussianPolicy) -> float:
        """Expected total cost of policy under this model (ℓ of the policy at this iteration's fit)."""
        return float(expected_cost(self.trajectory(policy), self.cost).sum())


def fit_local_model(
    samples: SampleBatch,
    expansion: CostExpansion,
    prior: DynamicsPriorGMM | None,
    regularization: float,
    initial_state_floor: float,
) -> LocalModel:
    """Update prior with samples (when given), then fit the dynamics, x1 and the quadratic cost."""
    # The cost first: an expansion that does not match the samples must fail before the prior changes.
    cost = QuadraticCost.from_expansion(expansion, samples.X, samples.U)
    if prior is not None:
        prior.update(samples.X, samples.U)
    return LocalModel(
        dynamics=fit_dynamics(samples.X, samples.U, prior, regularization),
        x1=fit_initial_state(samples.X, initial_state_floor),
        cost=cost,
        sample_cost=float(expansion.l.sum(axis=1).mean()),
    )


def fit_local_models(
    costs: Sequence[Cost],
    samples_per_condition: Sequence[SampleBatch],
    dynamics_priors: Sequence[DynamicsPriorGMM | None],
    regularization: float,
    initial_state_floor: float,
) -> list[LocalModel]:
    """fit_local_model for every condition m (costs[m] on samples_per_condition[m] with
    dynamics_priors[m]). Every cost is expanded before any prior changes: a cost that rejects
    its samples leaves no condition half-updated."""
    expansions = [cost.expand(samples) for cost, samples in zip(costs, samples_per_condition)]
    return [fit_local_model(samples, expansion, prior, regularization, initial_state_floor)
            for samples, expansion, prior in zip(samples_per_condition, expansions, dynamics_priors)]


def check_sample_batches(samples_per_condition: Sequence[SampleBatch], M: int, T: int, dX: int, dU: int) -> None:
    """samples_per_condition must hold M SampleBatches with matching T, dX, dU (ValueError naming the entry)."""
    if len(samples_per_condition) != M:
        raise ValueError(f"samples_per_condition: expected {M} batches (one per condition), got {len(samples_per_condition)}")
    for m, s in enumerate(samples_per_condition):
        if not isinstance(s, SampleBatch) or (s.T, s.dX, s.dU) != (T, dX, dU):
            got = f"T={s.T}, dX={s.dX}, dU={s.dU}" if isinstance(s, SampleBatch) else type(s).__name__
            raise ValueError(f"samples_per_condition[{m}]: expected a SampleBatch with T={T}, dX={dX}, dU={dU}, got {got}")


def check_initial_policies(initial_policies: Sequence[LinearGaussianPolicy]) -> None:
    """One LinearGaussianPolicy per condition, all of the same shape (ValueError naming the entry)."""
    if not initial_policies:
        raise ValueError("initial_policies: expected one policy per condition, got none")
    first = initial_policies[0]
    for m, p in enumerate(initial_policies):
        if not isinstance(p, LinearGaussianPolicy) or p.K.shape != first.K.shape:
            raise ValueError(
                f"initial_policies[{m}]: expected a LinearGaussianPolicy with K of shape {list(first.K.shape)}, "
                f"got {type(p).__name__}" + (f" with shape {list(p.K.shape)}" if isinstance(p, LinearGaussianPolicy) else "")
            )


def cost_per_condition(costs: Cost | Sequence[Cost], M: int) -> list[Cost]:
    """One Cost for every condition, or a list of M (ValueError otherwise)."""
    cost_list = list(costs) if isinstance(costs, Sequence) else [costs] * M
    if len(cost_list) != M or not all(isinstance(c, Cost) for c in cost_list):
        raise ValueError(f"costs: expected one Cost or {M} (one per condition), got {costs!r}")
    return cost_list
