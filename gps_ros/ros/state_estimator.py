"""The GPS state x from measured joint positions and velocities, with the arm's kinematic model.

Hardware and the sim node give the controller the same thing, a JointState; the
controller turns it into x with the task's MuJoCo model on a private MjData (forward
kinematics only, no dynamics), so x is computed the same way on both, and the same way
as the in-process MujocoAgent (StateAssembler on current kinematics).
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from gps_ros.core.validation import check_array
from gps_ros.sim.features import StateAssembler
from gps_ros.sim.task import Task


class StateEstimator:
    """x [dX] of ``task`` (its state layout, ``task.state_slices``) from q [n], q̇ [n].

    The target position [3] (world frame) enters the target-relative ee points and a
    target-position feature; set it per trial with ``set_target``.
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        self.model = task.build_model()
        self.data = mujoco.MjData(self.model)
        self.assembler = StateAssembler(task.config, self.model, self.data)
        self.state_slices = dict(self.assembler.state_slices)
        self.dX = self.assembler.dX
        self.n_joints = len(task.config.joints)
        self._target_body = self.model.body(task.config.target_body).id
        self.target = task.conditions[0].target.copy()
        self.set_target(self.target)

    def set_target(self, target: np.ndarray) -> None:
        """Target body position [3], metres in the world frame."""
        self.target = check_array("target_position", target, (3,)).copy()
        self.model.body_pos[self._target_body] = self.target

    def state(self, q: np.ndarray, qd: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """x [dX] for joint positions q [n] and velocities q̇ [n] (task joint order)."""
        d = self.data
        d.qpos[self.assembler.qpos_adr] = q
        d.qvel[self.assembler.dof_adr] = qd
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)
        x = np.zeros(self.dX) if out is None else out
        self.assembler.write(x)
        return x


def sensor_index(field: str, sensors: Sequence[str], layout: dict[str, slice]) -> tuple[np.ndarray, dict[str, slice]]:
    """Indices into the full state [d] that make up the vector of ``sensors`` (in that order),
    and that vector's layout. Raises ValueError naming ``field`` for an unknown or repeated name."""
    index: list[int] = []
    slices: dict[str, slice] = {}
    for i, name in enumerate(sensors):
        if name not in layout:
            raise ValueError(f"{field}[{i}]: expected one of {list(layout)}, got {name!r}")
        if name in slices:
            raise ValueError(f"{field}[{i}]: {name!r} appears twice")
        part = layout[name]
        slices[name] = slice(len(index), len(index) + part.stop - part.start)
        index.extend(range(part.start, part.stop))
    return np.array(index, dtype=np.intp), slices
