"""A MuJoCo model as a known dynamics model (``gps_ros.core.known_model.DynamicsModel``).

State x = [qpos; qvel] (dX = nq + nv), action u = ctrl (dU = nu). One control step is
``control_substeps`` calls of ``mj_step`` with ctrl held at u. Derivatives are MuJoCo's own
centred finite differences (``mjd_transitionFD``), which work in the tangent space
[dq; qvel]; with hinge and slide joints only, qpos and its tangent coincide, so the
Jacobians apply to x as it is. Free and ball joints (quaternions) are refused.

The warm start of the constraint solver is cleared before every step, so that a step is a
pure function of (x, u): the same (x, u) always gives the same successor, whatever was
simulated before.
"""

from __future__ import annotations

import mujoco
import numpy as np

from gps_ros.core.validation import check_array

_QUATERNION_JOINTS = {int(mujoco.mjtJoint.mjJNT_FREE): "free", int(mujoco.mjtJoint.mjJNT_BALL): "ball"}


class MujocoDynamicsModel:
    """x_{t+1} = f(x_t, u_t) by MuJoCo, with Jacobians by finite differences.

    model: a compiled MjModel with hinge/slide joints only and no actuator activations;
    control_substeps: simulator steps per control step (>= 1), so the control period is
    ``control_substeps * model.opt.timestep``; fd_eps: the finite-difference step (centred; a large
one gives the secant over ±fd_eps, the dynamics' average slope on that scale, across stiff contacts).
    For control_substeps > 1 the Jacobians of the substeps are chained:
    fx = A_n ... A_1 and fu = sum_k A_n ... A_{k+1} B_k (ctrl is held over the substeps).
    """

    def __init__(self, model: mujoco.MjModel, control_substeps: int = 1, fd_eps: float = 1e-6) -> None:
        if not isinstance(model, mujoco.MjModel):
            raise ValueError(f"model: expected a mujoco.MjModel, got {type(model).__name__}")
        if isinstance(control_substeps, bool) or not isinstance(control_substeps, (int, np.integer)) or control_substeps < 1:
            raise ValueError(f"control_substeps: expected an integer >= 1, got {control_substeps!r}")
        if not (isinstance(fd_eps, (int, float)) and 0.0 < fd_eps <= 0.1):
            raise ValueError(f"fd_eps: expected a float in (0, 0.1], got {fd_eps!r}")
        for j in range(model.njnt):
            kind = _QUATERNION_JOINTS.get(int(model.jnt_type[j]))
            if kind is not None:
                name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"#{j}"
                raise ValueError(
                    f"model: joint {name!r} is a {kind} joint; expected hinge/slide joints only "
                    "(qpos must map 1:1 to the tangent space)"
                )
        if model.na:
            raise ValueError(f"model: expected actuators without activation state (na = 0), got na = {model.na}")
        self.model = model
        self.control_substeps = int(control_substeps)
        self.fd_eps = float(fd_eps)
        self.nq = model.nq
        self.dX = model.nq + model.nv
        self.dU = model.nu
        self.dt = self.control_substeps * model.opt.timestep
        self._data = mujoco.MjData(model)
        self._A = np.zeros((2 * model.nv, 2 * model.nv))
        self._B = np.zeros((2 * model.nv, model.nu))

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """x: [dX], u: [dU] -> x_next: [dX], by ``control_substeps`` calls of mj_step."""
        x = check_array("x", x, (self.dX,))
        u = check_array("u", u, (self.dU,))
        self._load(x, u)
        for _ in range(self.control_substeps):
            self._data.qacc_warmstart[:] = 0.0
            mujoco.mj_step(self.model, self._data)
        return self._state()

    def linearize(self, X: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """X: [T, dX], U: [T, dU] -> fx: [T, dX, dX], fu: [T, dX, dU], x_next: [T, dX].

        x_next[t] = step(X[t], U[t]) exactly; fx, fu are centred finite differences.
        """
        X = check_array("X", X, (None, self.dX))
        U = check_array("U", U, (X.shape[0], self.dU))
        T = X.shape[0]
        fx = np.empty((T, self.dX, self.dX))
        fu = np.empty((T, self.dX, self.dU))
        x_next = np.empty((T, self.dX))
        for t in range(T):
            self._load(X[t], U[t])
            fx[t], fu[t] = self._substep_jacobians()
            x_next[t] = self._state()
        return fx, fu, x_next

    def _substep_jacobians(self) -> tuple[np.ndarray, np.ndarray]:
        """Chain the Jacobians of the substeps, advancing the scratch data to the successor."""
        m, d = self.model, self._data
        fx = np.eye(self.dX)
        fu = np.zeros((self.dX, self.dU))
        for _ in range(self.control_substeps):
            d.qacc_warmstart[:] = 0.0
            mujoco.mjd_transitionFD(m, d, self.fd_eps, True, self._A, self._B, None, None)
            fx = self._A @ fx
            fu = self._A @ fu + self._B
            mujoco.mj_step(m, d)
        return fx, fu

    def _load(self, x: np.ndarray, u: np.ndarray) -> None:
        d = self._data
        d.qpos[:] = x[: self.nq]
        d.qvel[:] = x[self.nq:]
        d.ctrl[:] = u
        d.time = 0.0

    def _state(self) -> np.ndarray:
        return np.concatenate([self._data.qpos, self._data.qvel])
