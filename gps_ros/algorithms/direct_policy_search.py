"""Direct policy search against a known dynamics model: CMA-ES over the policy's mean network.

Not a guided policy search method: the known-dynamics benchmarks run it beside VGPS and CGPS as a
reference for what the policy class itself reaches on a task. The objective is the deterministic
policy's summed cost (β = 1) from the training initial states, averaged over them, evaluated by
rolling the policy out on the model; log σ is not searched (the deterministic policy ignores it).
Candidates that produce non-finite actions score +inf. The DDP solutions from the same initial
actions are computed as in VGPS/CGPS line 1, as the reference cost and for the input normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cma
import numpy as np

from gps_ros.algorithms.known_model_search import KnownModelSearch
from gps_ros.core.ilqg import ILQGSettings


@dataclass(frozen=True)
class DirectSearchConfig:
    """generations: CMA-ES generations per iteration(); population: candidates per generation;
    initial_sigma: CMA-ES's initial step size on the network's weights; initial_ddp: the reference
    DDP (its cost_weight replaced by ddp_cost_weight, as β₀ in VGPS/CGPS)."""

    generations: int = 20
    population: int = 16
    initial_sigma: float = 0.1
    ddp_cost_weight: float = 1.0
    initial_ddp: ILQGSettings = field(default_factory=lambda: ILQGSettings(max_iterations=100))

    def __post_init__(self) -> None:
        for name, least in (("generations", 1), ("population", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name}: expected an integer >= {least}, got {value!r}")
        for name in ("initial_sigma", "ddp_cost_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive finite number, got {value!r}")


@dataclass(frozen=True)
class DirectSearchIteration:
    """k: iteration (1-based); evaluations: candidates evaluated so far (not counting the starting
    weights); best_cost: the objective of the best candidate so far (the policy now holds it);
    sigma: CMA-ES's step size."""

    k: int
    evaluations: int
    best_cost: float
    sigma: float


class DirectPolicySearch(KnownModelSearch):
    """CMA-ES on π's mean-network weights for the initial states x0 [M, dX]; arguments as
    KnownModelSearch (config: DirectSearchConfig). ``initial`` holds the reference DDP solutions;
    the policy holds the best candidate after each iteration()."""

    default_config = DirectSearchConfig()

    def _initial_ddp_settings(self, config: DirectSearchConfig) -> tuple[ILQGSettings, float, ILQGSettings]:
        return config.initial_ddp, config.ddp_cost_weight, config.initial_ddp

    def _start(self) -> None:
        self.policy.set_normalization(np.concatenate([r.X for r in self.initial]))
        start = self.policy.mean_weights()
        self.search = cma.CMAEvolutionStrategy(
            start, self.config.initial_sigma,
            {"popsize": self.config.population, "randn": lambda *shape: self.rng.standard_normal(shape), "verbose": -9},
        )
        self.evaluations = 0
        self.best_cost, self.best_weights = self.objective(start), start

    def objective(self, weights: np.ndarray) -> float:
        """Mean over x0 of the deterministic policy's summed cost with these network weights
        (left loaded in the policy); +inf when an action is not finite."""
        self.policy.set_mean_weights(weights)
        return self.policy_cost()

    def iteration(self) -> DirectSearchIteration:
        """config.generations CMA-ES generations; the policy keeps the best candidate found so far."""
        self.k += 1
        for _ in range(self.config.generations):
            candidates = self.search.ask()
            values = [self.objective(w) for w in candidates]
            self.search.tell(candidates, values)
            self.evaluations += len(candidates)
            best = int(np.argmin(values))
            if values[best] < self.best_cost:
                self.best_cost, self.best_weights = values[best], np.array(candidates[best])
        self.policy.set_mean_weights(self.best_weights)
        return DirectSearchIteration(self.k, self.evaluations, self.best_cost, float(self.search.sigma))
