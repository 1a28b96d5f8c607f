"""Algorithm registry: the config's ``algorithm:`` name -> a builder of the algorithm object.

An algorithm object the trainer can run (traj_opt, MDGPS, BADMM, reset-free GPS, ...) has
- ``local_policies``: one policy per training condition; the trainer samples
  ``samples_per_condition`` trials from each (from ``sampling_policies()`` instead when the
  algorithm has it, e.g. on-policy MDGPS samples the global policy) and evaluates them;
- ``iteration(samples_per_condition)``: one iteration from a SampleBatch per condition,
  returning a result with ``mean_sample_cost`` (optionally accepting ``on_phase=callable``,
  called with "dynamics", "c_step", "s_step", ... as the iteration goes on);
- optionally ``global_policy``: evaluated instead of the local policies when present;
- it pickles (the checkpoint stores the whole object: policies, priors with their
  buffers, step sizes, η, a global policy with its optimiser state).
An algorithm plugs in either by ``register_algorithm(name, builder)`` or, with no edit
here, by a module ``gps_ros/algorithms/<name>.py`` defining
``build_for_training(config, task)``. A builder takes the TrainConfig and the Task
(T, dX, dU, state_slices, condition(i), cost()) and reads its own keys from
``config.settings``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from gps_ros.core.linear_gaussian import init_pd

Builder = Callable[..., object]

# name -> builder, or "module:function" resolved on first use.
_BUILDERS: dict[str, Builder | str] = {}


def register_algorithm(name: str, builder: Builder | str) -> None:
    """builder(config: TrainConfig, task: Task) -> algorithm object, or "module:function"."""
    _BUILDERS[name] = builder


def algorithm_names() -> list[str]:
    """The registered names (modules found by convention are added on first use)."""
    return sorted(_BUILDERS)


def is_algorithm(name: str) -> bool:
    return _builder(name) is not None


def _builder(name: str) -> Builder | None:
    builder = _BUILDERS.get(name)
    if builder is None and isinstance(name, str) and name.isidentifier():
        module = f"gps_ros.algorithms.{name}"
        if importlib.util.find_spec(module) is not None:
            builder = getattr(importlib.import_module(module), "build_for_training", None)
            if builder is not None:
                _BUILDERS[name] = builder
    if isinstance(builder, str):
        module, _, function = builder.partition(":")
        builder = _BUILDERS[name] = getattr(importlib.import_module(module), function)
    return builder


def unknown_algorithm(name: object) -> ValueError:
    return ValueError(f"algorithm: expected one of {algorithm_names()} or a module gps_ros/algorithms/<name>.py "
                      f"defining build_for_training(config, task), got {name!r}")


def build_algorithm(config, task) -> object:
    """The algorithm named by ``config.algorithm`` for ``task``'s ``config.conditions``."""
    builder = _builder(config.algorithm)
    if builder is None:
        raise unknown_algorithm(config.algorithm)
    return builder(config, task)


def initial_policies(config, task) -> list:
    """One PD policy per condition holding its initial pose (config.initial_policy)."""
    q, qd = task.state_slices["joint_angles"], task.state_slices["joint_velocities"]
    init = config.initial_policy
    return [init_pd(task.T, task.dX, task.dU, q, qd, task.condition(c).qpos, init.kp, init.kd, init.noise_variance)
            for c in config.conditions]


def build_traj_opt(config, task):
    from gps_ros.algorithms.traj_opt import TrajOpt, TrajOptConfig
    from gps_ros.core.step_size import StepSizeConfig

    if config.settings:
        raise ValueError(f"settings: traj_opt takes no extra settings, got {sorted(config.settings)}")
    algo_config = TrajOptConfig(
        kl_step=config.kl_step,
        step_size=StepSizeConfig(min_mult=config.min_step_mult, max_mult=config.max_step_mult),
    )
    return TrajOpt(algo_config, [task.cost() for _ in config.conditions], initial_policies(config, task))


# Settings of the neural-policy algorithms (config ``settings:``), with their defaults.
GPS_SETTINGS = {
    "hidden_sizes": [40, 40],       # MLP hidden layers of the global policy
    "s_step_iterations": 2000,      # Adam steps per S-step
    "s_step_batch_size": 64,
    "s_step_lr_schedule": "cosine", # cosine (Adam's rate annealed to 0 in every S-step) | constant
    "initial_step_mult": 1.0,
}
MDGPS_SETTINGS = {**GPS_SETTINGS, "sampling": "off_policy", "step_rule": "classic", "s_step_history": 1}


def _gps_settings(config, allowed: dict) -> dict:
    unknown = sorted(set(config.settings) - set(allowed))
    if unknown:
        raise ValueError(f"settings.{unknown[0]}: unknown key for {config.algorithm}; expected one of {sorted(allowed)}")
    return {**allowed, **config.settings}


def _s_step_config(settings: dict, seed: int):
    from gps_ros.policies.sstep import SStepConfig

    iterations, batch_size = int(settings["s_step_iterations"]), int(settings["s_step_batch_size"])
    try:
        return SStepConfig(iterations=iterations, batch_size=batch_size, lr_schedule=settings["s_step_lr_schedule"], seed=seed)
    except ValueError as error:  # SStepConfig names its own field ("lr_schedule: ..."); the user wrote settings.s_step_*
        raise ValueError(f"settings.s_step_{error}") from None


def _build_gps(config, task, algorithm_class, config_class, allowed: dict, algorithm_keys: tuple[str, ...] = ()):
    """MDGPS or BADMM: the task's cost, PD initial policies, an MLP global policy seeded by config.seed."""
    from gps_ros.algorithms.global_policy import mlp_global_policy
    from gps_ros.core.step_size import StepSizeConfig

    s = _gps_settings(config, allowed)
    algo_config = config_class(
        kl_step=config.kl_step, initial_step_mult=float(s["initial_step_mult"]),
        step_size=StepSizeConfig(min_mult=config.min_step_mult, max_mult=config.max_step_mult),
        s_step=_s_step_config(s, config.seed),
        **{key: s[key] for key in algorithm_keys},
    )
    return algorithm_class(algo_config, task.cost(), initial_policies(config, task),
                           mlp_global_policy(task.dO, task.dU, [int(h) for h in s["hidden_sizes"]], seed=config.seed))


def build_mdgps(config, task):
    from gps_ros.algorithms.mdgps import MDGPS, MDGPSConfig

    return _build_gps(config, task, MDGPS, MDGPSConfig, MDGPS_SETTINGS, ("sampling", "step_rule", "s_step_history"))


def build_badmm(config, task):
    from gps_ros.algorithms.badmm import BADMM, BADMMConfig

    return _build_gps(config, task, BADMM, BADMMConfig, GPS_SETTINGS)


register_algorithm("traj_opt", build_traj_opt)
register_algorithm("mdgps", build_mdgps)
register_algorithm("badmm", build_badmm)
