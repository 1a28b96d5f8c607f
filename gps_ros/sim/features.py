"""Assembling the state vector x [dX] (and the ee-point Jacobian) from MuJoCo data.

Runs once per control step, so everything is resolved to ids, index arrays and
preallocated buffers at construction; ``write`` only copies and does small products.
"""

from __future__ import annotations

import mujoco
import numpy as np

from gps_ros.sim.config import FeatureSpec, TaskConfig


class StateAssembler:
    """Writes the state of ``data`` into x following ``config.state``.

    Requires the kinematics of ``data`` to be current (mj_kinematics and mj_comPos
    after the last mj_step): site positions and Jacobians are read from it.
    state_slices: name -> slice of x. jacobian_feature: the first site_points feature
    (the cost's "ee points"), or None.
    """

    def __init__(self, config: TaskConfig, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model, self.data = model, data
        joint_ids = np.array([_id(model, mujoco.mjtObj.mjOBJ_JOINT, j, "task.joints") for j in config.joints])
        self.qpos_adr = model.jnt_qposadr[joint_ids].astype(np.intp)
        self.dof_adr = model.jnt_dofadr[joint_ids].astype(np.intp)
        self.target_site = _id(model, mujoco.mjtObj.mjOBJ_SITE, config.target_site, "task.target_site")
        site_names = sorted({s for f in config.state for s in f.sites})
        self.site_ids = np.array(
            [_id(model, mujoco.mjtObj.mjOBJ_SITE, s, "task.state[*].sites") for s in site_names], dtype=np.intp
        )
        row = {s: i for i, s in enumerate(site_names)}
        self._jac = np.zeros((len(site_names), 3, model.nv))
        self._vel = np.zeros((len(site_names), 3))
        self._jac_targets = [(self._jac[i], int(sid)) for i, sid in enumerate(self.site_ids)]
        self._qpos, self._qvel = data.qpos, data.qvel
        # Flat views and flat index arrays: each feature is then one np.take per step.
        self._site_xpos_flat = data.site_xpos.reshape(-1)
        self._vel_flat = self._vel.reshape(-1)

        self.state_slices: dict[str, slice] = {}
        self._writers: list[tuple[str, slice, np.ndarray, np.ndarray | None]] = []
        start = 0
        for f in config.state:
            size = _size(f, len(config.joints))
            sl = slice(start, start + size)
            self.state_slices[f.name] = sl
            axes = np.array(f.axes, dtype=np.intp)
            target = None
            if f.type == "joint_angles":
                index = self.qpos_adr
            elif f.type == "joint_velocities":
                index = self.dof_adr
            elif f.type == "site_velocities":
                index = (np.array([row[s] for s in f.sites])[:, None] * 3 + axes).ravel()
            else:
                index = (self.site_ids[[row[s] for s in f.sites]][:, None] * 3 + axes).ravel()
                if f.type == "site_points":
                    target = np.tile(self.target_site * 3 + axes, len(f.sites))
            self._writers.append((f.type, sl, index, target))
            start += size
        self.dX = start
        self._needs_jac = any(f.type == "site_velocities" for f in config.state)
        self.jacobian_feature = next((f for f in config.state if f.type == "site_points"), None)
        self._jac_cols = self._jac_target_cols = None
        if self.jacobian_feature is not None:
            f = self.jacobian_feature
            rows = np.array([row[s] for s in f.sites], dtype=np.intp)
            # flat index into the Jacobians [n_sites * 3 * nv] of the point rows x joint columns
            self._jac_index = (
                (rows[:, None] * 3 + np.array(f.axes))[:, :, None] * model.nv + self.dof_adr
            ).reshape(-1, self.dof_adr.size)
            self._jac_cols = next((self.state_slices[g.name] for g in config.state if g.type == "joint_angles"), None)
            # The points are target-relative, so a target-position feature enters with -I.
            self._jac_target_cols = next(
                (self.state_slices[g.name] for g in config.state
                 if g.type == "site_position" and g.sites == (config.target_site,) and g.axes == f.axes),
                None,
            )
            self._target_block = -np.tile(np.eye(len(f.axes)), (len(f.sites), 1))

    def write(self, x: np.ndarray) -> None:
        """Fill x [dX] in place from the current data."""
        if self._needs_jac:
            self._site_jacobians()
            np.matmul(self._jac, self._qvel, out=self._vel)
        for kind, sl, index, target in self._writers:
            if kind == "joint_angles":
                np.take(self._qpos, index, out=x[sl])
            elif kind == "joint_velocities":
                np.take(self._qvel, index, out=x[sl])
            elif kind == "site_velocities":
                np.take(self._vel_flat, index, out=x[sl])
            else:
                np.take(self._site_xpos_flat, index, out=x[sl])
                if target is not None:
                    x[sl] -= self._site_xpos_flat[target]

    @property
    def has_ee_jacobian(self) -> bool:
        """Whether the ee points depend on any state column (not so without joint angles)."""
        return self.jacobian_feature is not None and (self._jac_cols is not None or self._jac_target_cols is not None)

    def ee_jacobian(self, out: np.ndarray) -> None:
        """d(x[jacobian_feature]) / dx into out [n_points * n_axes, dX]; valid after ``write``.

        Joint-angle columns come from mj_jacSite; the other columns are left untouched
        (zeros in a zeroed buffer) except a target-position feature (-I).
        """
        if not self._needs_jac:
            self._site_jacobians()
        if self._jac_cols is not None:
            out[:, self._jac_cols] = self._jac.reshape(-1)[self._jac_index]
        if self._jac_target_cols is not None:
            out[:, self._jac_target_cols] = self._target_block

    def _site_jacobians(self) -> None:
        m, d = self.model, self.data
        for jac, sid in self._jac_targets:
            mujoco.mj_jacSite(m, d, jac, None, sid)


def _size(f: FeatureSpec, n_joints: int) -> int:
    if f.type in ("joint_angles", "joint_velocities"):
        return n_joints
    return len(f.sites) * len(f.axes)


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str, field: str) -> int:
    i = mujoco.mj_name2id(model, kind, name)
    if i < 0:
        raise ValueError(f"{field}: expected the name of a {kind.name[6:].lower()} in the model, got {name!r}")
    return i
