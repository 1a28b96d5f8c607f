"""A MuJoCo task: its model, state/observation layout, conditions, success test and cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import yaml

from gps_ros.core.costs import Cost, build_cost
from gps_ros.core.validation import check_array
from gps_ros.resources import config_path
from gps_ros.sim.config import TaskConfig, parse_task_config
from gps_ros.sim.features import StateAssembler

MODELS_DIR = Path(__file__).resolve().parent / "models"
TASKS_DIR = config_path("tasks")


@dataclass(frozen=True)
class Condition:
    """Where a trial starts: target [3] (world position of the target body) and
    qpos [n_joints] (initial angles of the controlled joints; velocities start at zero)."""

    target: np.ndarray
    qpos: np.ndarray


class Task:
    """A task config bound to its compiled model.

    state_slices / dX: the state layout; obs_index [dO] (state indices the global policy
    sees) and obs_slices / dO; dU: number of actuators; conditions: the fixed conditions.
    """

    def __init__(self, config: TaskConfig, model_path: Path) -> None:
        self.config = config
        self.model_path = Path(model_path)
        model = self.build_model()
        _check_model(config, model)
        self.model = model
        assembler = StateAssembler(config, model, mujoco.MjData(model))
        self.state_slices = dict(assembler.state_slices)
        self.dX = assembler.dX
        self.dU = model.nu
        self.has_ee_jacobian = assembler.has_ee_jacobian
        ee = assembler.jacobian_feature
        if ee is None:
            raise ValueError(f"task.state: expected a site_points feature (the ee points), got {[f.type for f in config.state]}")
        self.ee_feature = ee.name
        self.ee_shape = (len(ee.sites), len(ee.axes))
        if config.success.point >= len(ee.sites):
            raise ValueError(f"task.success.point: expected an index < {len(ee.sites)} (ee points), got {config.success.point}")
        self.obs_slices: dict[str, slice] = {}
        index = []
        for name in config.obs:
            part = self.state_slices[name]
            self.obs_slices[name] = slice(len(index), len(index) + part.stop - part.start)
            index.extend(range(part.start, part.stop))
        self.obs_index = np.array(index, dtype=np.intp)
        self.dO = len(index)
        c = config.conditions
        n = max(len(c.fixed_targets), len(c.fixed_initial_qpos))
        self.conditions = [
            Condition(c.fixed_targets[i % len(c.fixed_targets)].copy(), c.fixed_initial_qpos[i % len(c.fixed_initial_qpos)].copy())
            for i in range(n)
        ]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def T(self) -> int:
        return self.config.T

    @property
    def dt(self) -> float:
        return self.config.dt

    def build_model(self) -> mujoco.MjModel:
        """A fresh compiled model (each agent moves its own target body)."""
        return mujoco.MjModel.from_xml_path(str(self.model_path))

    def condition(self, condition: int | Condition) -> Condition:
        """A fixed condition by index, or a given Condition checked against the model."""
        if isinstance(condition, Condition):
            return Condition(
                check_array("condition.target", condition.target, (3,)),
                check_array("condition.qpos", condition.qpos, (len(self.config.joints),)),
            )
        if isinstance(condition, (int, np.integer)) and 0 <= condition < len(self.conditions):
            return self.conditions[int(condition)]
        raise ValueError(f"condition: expected a Condition or an index in [0, {len(self.conditions)}), got {condition!r}")

    def random_condition(self, rng: np.random.Generator) -> Condition:
        """Target drawn from the target region (fixed default without one) and initial
        angles from [initial_qpos_low, initial_qpos_high] (the default without them)."""
        c = self.config.conditions
        region = c.target_region
        if region is None:
            target = self.conditions[0].target.copy()
        elif region.type == "box":
            target = rng.uniform(np.array(region.low), np.array(region.high))
        else:
            radius = np.sqrt(rng.uniform(region.r_min**2, region.r_max**2))
            angle = rng.uniform(0.0, 2 * np.pi)
            target = np.array(region.center) + radius * np.array([np.cos(angle), np.sin(angle), 0.0])
        if c.initial_qpos_low is None:
            qpos = self.config.initial_qpos.copy()
        else:
            qpos = rng.uniform(c.initial_qpos_low, c.initial_qpos_high)
        return Condition(target, qpos)

    def final_distance(self, X: np.ndarray) -> np.ndarray:
        """Distance [N] of the success point to the target at the last step of X [N, T, dX]."""
        X = check_array("X", X, (None, None, self.dX))
        points = X[:, -1, self.state_slices[self.ee_feature]].reshape(len(X), *self.ee_shape)
        return np.linalg.norm(points[:, self.config.success.point], axis=-1)

    def success(self, X: np.ndarray) -> np.ndarray:
        """Whether each trial in X [N, T, dX] ends within the success threshold, [N] bool."""
        return self.final_distance(X) < self.config.success.threshold

    def cost(self) -> Cost:
        """The task's cost, built from its config by ``gps_ros.core.costs.build_cost``."""
        return build_cost(self.config.cost, name=f"{self.name}.cost")


def load_task(name_or_path: str | Path) -> Task:
    """Load ``config/tasks/<name>.yaml`` (or a YAML file path) and compile its model.

    The model file is looked up in the package's models directory, then next to the YAML.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = TASKS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))
            raise ValueError(f"name_or_path: expected a task YAML file or one of {known}, got {str(name_or_path)!r}")
    if not path.is_file():
        raise ValueError(f"name_or_path: no such task file {str(path)!r}")
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    config = parse_task_config(raw)
    model_path = next((p for p in (MODELS_DIR / config.model, path.parent / config.model) if p.is_file()), None)
    if model_path is None:
        raise ValueError(f"task.model: {config.model!r} found neither in {MODELS_DIR} nor next to {path}")
    return Task(config, model_path)


def _check_model(config: TaskConfig, model: mujoco.MjModel) -> None:
    """The controlled joints are 1-DoF, driven one actuator each in order; dt = substeps x timestep."""
    if abs(config.substeps * model.opt.timestep - config.dt) > 1e-9:
        raise ValueError(
            f"task.substeps: expected substeps x timestep ({model.opt.timestep}) = dt ({config.dt}), "
            f"got substeps={config.substeps}"
        )
    joint_ids = []
    for name in config.joints:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0 or int(model.jnt_type[jid]) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise ValueError(f"task.joints: expected hinge or slide joints of the model, got {name!r}")
        joint_ids.append(jid)
    driven = [int(model.actuator_trnid[i, 0]) for i in range(model.nu)]
    if driven != joint_ids or not np.all(model.actuator_trntype == int(mujoco.mjtTrn.mjTRN_JOINT)):
        raise ValueError(f"task.joints: expected the actuators to drive exactly {list(config.joints)} in order")
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, config.target_body)
    if body < 0 or model.body_parentid[body] != 0 or model.body_jntnum[body] != 0:
        # Conditions set body_pos, which is a world position only for a static child of the world.
        raise ValueError(f"task.target_body: expected a static child body of the world, got {config.target_body!r}")

