"""A hand-written walking controller for the planar walker: the demonstration that DDP
tracks to make the walker's initial trajectory, as in the papers (which used SIMBICON,
Yin et al. 2007).

The controller is SIMBICON's in two states: the legs swap stance and swing roles every
``step_duration`` seconds; every joint is PD-controlled towards a target angle, except
that the swing hip tracks a target angle of the thigh in the world frame with balance
feedback (theta = swing_hip + c_d d + c_v v, d the horizontal distance from the stance
ankle to the centre of mass, v the forward velocity), and the stance hip supplies the
torque that keeps the torso at its target pitch. Angles follow models/walker.xml.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from gps_ros.core.validation import check_array
from gps_ros.sim.locomotion import LocomotionTask

_LEGS = ("right", "left")
_JOINTS = ("hip", "knee", "ankle")


@dataclass(frozen=True)
class GaitParams:
    """SIMBICON parameters (angles in rad, gains in N m / rad and N m s / rad).

    swing_hip: world-frame thigh angle target of the swing leg (positive forward);
    swing_knee / swing_ankle / stance_knee / stance_ankle: joint angle targets;
    torso: root angle target (positive leans back); c_d / c_v: balance feedback gains;
    kp / kd: hip and knee gains; kp_ankle / kd_ankle; kp_torso / kd_torso.
    Targets and durations start from SIMBICON's walking gait (swing knee -1.1, swing
    ankle 0.6, stance knee -0.05, 0.3 s states); the swing hip, forward lean, feedback
    gains and PD gains are ours, tuned on models/walker.xml (it walks at about 0.75 m/s
    with the torso centre near 1.23 m, for 8 s from the rest pose and from perturbed starts).
    """

    step_duration: float = 0.3
    swing_hip: float = 0.4
    swing_knee: float = -1.1
    swing_ankle: float = 0.6
    stance_knee: float = -0.05
    stance_ankle: float = 0.0
    torso: float = -0.2
    c_d: float = 0.5
    c_v: float = 0.2
    kp: float = 200.0
    kd: float = 20.0
    kp_ankle: float = 50.0
    kd_ankle: float = 5.0
    kp_torso: float = 300.0
    kd_torso: float = 30.0


class GaitController:
    """u = controller(x, t) for the walker of ``task`` (joints named as in models/walker.xml)."""

    def __init__(self, task: LocomotionTask, params: GaitParams | None = None) -> None:
        model = task.model
        try:
            self._qpos = {(leg, j): model.joint(f"{leg}_{j}").qposadr[0] for leg in _LEGS for j in _JOINTS}
            self._act = {(leg, j): model.actuator(f"{leg}_{j}").id for leg in _LEGS for j in _JOINTS}
            self._ankle_body = {leg: model.body(f"{leg}_foot").id for leg in _LEGS}
            self._torso = model.body("torso").id
        except KeyError as exc:
            raise ValueError(f"task.model: expected the walker's joints, actuators and bodies, missing {exc}") from None
        self.task = task
        self.params = params or GaitParams()
        self._data = mujoco.MjData(model)
        self._nq = model.nq
        self._ctrl_lo, self._ctrl_hi = model.actuator_ctrlrange.T

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """x: [dX] at time t (s) -> u: [dU], clipped to the actuators' ranges."""
        p, nq = self.params, self._nq
        stance, swing = _LEGS if int(t // p.step_duration) % 2 == 0 else _LEGS[::-1]
        q, qd = x[:nq], x[nq:]
        d = self._data
        d.qpos[:], d.qvel[:] = q, qd
        mujoco.mj_kinematics(self.task.model, d)
        mujoco.mj_comPos(self.task.model, d)
        com_offset = d.subtree_com[self._torso, 0] - d.xpos[self._ankle_body[stance], 0]
        pitch, pitch_rate = q[self.task.angle_index], qd[self.task.angle_index]

        u = np.zeros(self.task.dU)

        def pd(leg: str, joint: str, target: float, kp: float, kd: float) -> float:
            i = self._qpos[(leg, joint)]
            return kp * (target - q[i]) - kd * qd[i]

        u[self._act[(swing, "knee")]] = pd(swing, "knee", p.swing_knee, p.kp, p.kd)
        u[self._act[(stance, "knee")]] = pd(stance, "knee", p.stance_knee, p.kp, p.kd)
        u[self._act[(swing, "ankle")]] = pd(swing, "ankle", p.swing_ankle, p.kp_ankle, p.kd_ankle)
        u[self._act[(stance, "ankle")]] = pd(stance, "ankle", p.stance_ankle, p.kp_ankle, p.kd_ankle)
        hip = self._qpos[(swing, "hip")]
        thigh_target = p.swing_hip + p.c_d * com_offset + p.c_v * qd[self.task.x_index]
        swing_hip = p.kp * (thigh_target - (pitch + q[hip])) - p.kd * (pitch_rate + qd[hip])
        torso = p.kp_torso * (p.torso - pitch) - p.kd_torso * pitch_rate
        u[self._act[(swing, "hip")]] = swing_hip
        u[self._act[(stance, "hip")]] = -torso - swing_hip
        return np.clip(u, self._ctrl_lo, self._ctrl_hi)


def demonstration(task: LocomotionTask, x0: np.ndarray, params: GaitParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the gait controller for task.T steps from x0: [dX].

    Returns X: [T, dX] (X[0] = x0) and U: [T, dU], with X[t+1] = task.dynamics.step(X[t], U[t]).
    """
    x = check_array("x0", x0, (task.dX,))
    controller = GaitController(task, params)
    X = np.empty((task.T, task.dX))
    U = np.empty((task.T, task.dU))
    for t in range(task.T):
        X[t] = x
        U[t] = controller(x, t * task.dt)
        x = task.dynamics.step(x, U[t])
    return X, U
