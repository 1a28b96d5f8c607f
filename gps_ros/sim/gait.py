"""A hand-written walking controller for the planar walker: the demonstration that DDP
tracks to make the walker's initial trajectory, as in the papers (which used SIMBICON,
Yin et al. 2007).

SIMBICON's stance/swing roles switch on a timer, and its swing hip tracks a world-frame
thigh angle with balance feedback; a 10-unit policy of the papers' class imitated such a
controller of ours poorly (hip and knee residuals of 6-18 N m, falls from every start, dev
seed 10). This one is written to lie near that class: every joint is PD-controlled towards
a target that one smooth gate moves between a stance and a swing pose,

    g = sigmoid(phase_gain · s),  s = (q̇_hipR − q̇_hipL) / phase_velocity + (q_hipL − q_hipR) / phase_angle,

g the right leg's swing weight and 1 − g the left's (s grows while the right thigh swings
forward and while it is behind the left one), and both hips share the torque that holds the
torso's pitch. So u is linear in the state plus one gated term, clipped to the actuator range.
Angles follow models/walker.xml.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from gps_ros.core.validation import check_array
from gps_ros.sim.locomotion import LocomotionTask

_LEGS = ("right", "left")
_JOINTS = ("hip", "knee", "ankle")


@dataclass(frozen=True)
class GaitParams:
    """Gate and PD parameters (angles in rad, velocities in rad/s, gains in N m / rad and N m s / rad).

    phase_velocity / phase_angle / phase_gain: the gate's scales and steepness (module docstring);
    swing_* / stance_*: joint angle targets of a leg at g = 1 / g = 0; kp / kd: hip and knee gains;
    kp_ankle / kd_ankle; torso: root pitch target (negative leans forward); kp_torso / kd_torso:
    the pitch PD, of which torso_share is subtracted from each hip's torque.
    Ours, tuned on models/walker.xml by random search and hill climbing on the distance walked
    without falling from perturbed dev starts (not the benchmarks' states): it walks at about
    0.6-0.7 m/s for 4 s from those starts.
    """

    phase_velocity: float = 1.64
    phase_angle: float = 0.331
    phase_gain: float = 3.87
    swing_hip: float = 0.89
    stance_hip: float = 0.092
    swing_knee: float = -0.4
    stance_knee: float = -0.103
    swing_ankle: float = 0.529
    stance_ankle: float = 0.023
    torso: float = -0.367
    kp: float = 132.884
    kd: float = 16.161
    kp_ankle: float = 50.0
    kd_ankle: float = 5.0
    kp_torso: float = 231.712
    kd_torso: float = 15.181
    torso_share: float = 0.952


class GaitController:
    """u = controller(x) for the walker of ``task`` (joints named as in models/walker.xml).

    It needs an asymmetric start: at the symmetric rest pose with zero velocity g = 1/2, both legs
    take the half-swing pose and the walker falls; walker_task's initial states perturb the velocities."""

    def __init__(self, task: LocomotionTask, params: GaitParams | None = None) -> None:
        model = task.model
        try:
            self._qpos = {(leg, j): model.joint(f"{leg}_{j}").qposadr[0] for leg in _LEGS for j in _JOINTS}
            self._act = {(leg, j): model.actuator(f"{leg}_{j}").id for leg in _LEGS for j in _JOINTS}
        except KeyError as exc:
            raise ValueError(f"task.model: expected the walker's joints and actuators, missing {exc}") from None
        self.task = task
        self.params = params or GaitParams()
        self._nq = model.nq
        self._ctrl_lo, self._ctrl_hi = model.actuator_ctrlrange.T

    def swing_weight(self, x: np.ndarray) -> float:
        """g of the module docstring at x: [dX], the right leg's swing weight in (0, 1)."""
        p, q, qd = self.params, x[: self._nq], x[self._nq:]
        right, left = self._qpos[("right", "hip")], self._qpos[("left", "hip")]
        s = (qd[right] - qd[left]) / p.phase_velocity + (q[left] - q[right]) / p.phase_angle
        return float(expit(p.phase_gain * s))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: [dX] -> u: [dU], clipped to the actuators' ranges."""
        p, q, qd = self.params, x[: self._nq], x[self._nq:]
        g = self.swing_weight(x)
        pitch = self.task.angle_index
        torso = p.kp_torso * (p.torso - q[pitch]) - p.kd_torso * qd[pitch]
        u = np.zeros(self.task.dU)
        for leg, w in zip(_LEGS, (g, 1.0 - g)):
            for joint, kp, kd in (("hip", p.kp, p.kd), ("knee", p.kp, p.kd), ("ankle", p.kp_ankle, p.kd_ankle)):
                stance, swing = getattr(p, f"stance_{joint}"), getattr(p, f"swing_{joint}")
                i = self._qpos[(leg, joint)]
                u[self._act[(leg, joint)]] = kp * (stance + (swing - stance) * w - q[i]) - kd * qd[i]
            u[self._act[(leg, "hip")]] -= p.torso_share * torso
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
        U[t] = controller(x)
        x = task.dynamics.step(x, U[t])
    return X, U
