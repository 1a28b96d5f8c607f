"""Placing the arm so its ee points sit at given positions (inverse kinematics).

Used to set up known situations, e.g. the peg inside or above the hole for testing
the success detection.
"""

from __future__ import annotations

import mujoco
import numpy as np

from gps_ros.core.validation import check_array
from gps_ros.sim.task import Task


def solve_ee_points(
    task: Task, model: mujoco.MjModel, data: mujoco.MjData, targets: np.ndarray, iterations: int = 200, damping: float = 1e-4
) -> float:
    """Move the controlled joints of ``data`` (in place, velocities zeroed) so the ee
    points (all three axes of the sites of the task's ee feature) reach targets
    [n_points, 3] in world coordinates; damped least squares within joint limits.
    Returns the largest remaining point error (m). Leaves current kinematics in data.
    """
    sites = next(f for f in task.config.state if f.name == task.ee_feature).sites
    targets = check_array("targets", targets, (len(sites), 3))
    site_ids = [model.site(s).id for s in sites]
    joint_ids = [model.joint(j).id for j in task.config.joints]
    qadr, dofs = model.jnt_qposadr[joint_ids], model.jnt_dofadr[joint_ids]
    limited = model.jnt_limited[joint_ids].astype(bool)
    low = np.where(limited, model.jnt_range[joint_ids, 0], -np.inf)
    high = np.where(limited, model.jnt_range[joint_ids, 1], np.inf)
    jac = np.zeros((len(sites), 3, model.nv))
    data.qvel[:] = 0
    for _ in range(iterations):
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        err = (targets - data.site_xpos[site_ids]).ravel()
        for i, sid in enumerate(site_ids):
            mujoco.mj_jacSite(model, data, jac[i], None, sid)
        J = jac[:, :, dofs].reshape(-1, len(dofs))
        step = J.T @ np.linalg.solve(J @ J.T + damping * np.eye(len(err)), err)
        data.qpos[qadr] = np.clip(data.qpos[qadr] + step, low, high)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    return float(np.abs(targets - data.site_xpos[site_ids]).max())


def place_peg(task: Task, model: mujoco.MjModel, data: mujoco.MjData, offset: np.ndarray) -> float:
    """Hold the peg vertical with its bottom point at the target site + offset [3]
    (offset (0, 0, 0): fully inserted). Returns the largest point error (m)."""
    offset = check_array("offset", offset, (3,))
    f = next(f for f in task.config.state if f.name == task.ee_feature)
    top, bottom = (model.site(s).id for s in f.sites)
    length = np.linalg.norm(model.site_pos[top] - model.site_pos[bottom])
    bottom_pos = data.site_xpos[model.site(task.config.target_site).id] + offset
    return solve_ee_points(task, model, data, np.stack([bottom_pos + [0.0, 0.0, length], bottom_pos]))
