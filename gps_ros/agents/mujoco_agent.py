"""In-process MuJoCo agent: runs a policy on a task model and records SampleBatches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from gps_ros.agents.base import Agent, named_policies
from gps_ros.core.noise import draw_noise
from gps_ros.core.samples import SampleBatch
from gps_ros.core.validation import check_array
from gps_ros.policies.base import Policy, as_policy
from gps_ros.sim.config import NoiseSpec, RenderSpec
from gps_ros.sim.features import StateAssembler
from gps_ros.sim.render import CameraRenderer
from gps_ros.sim.task import Condition, Task, load_task


class MujocoAgent(Agent):
    """Samples trials of ``task`` on a private copy of its model.

    Each control step (dt) holds the action for ``substeps`` physics steps; actions are
    clamped to the actuators' ctrlrange and U records the applied (clamped) torques.
    extras: "ee_point_jacobians" [N, T, dP, dX] (when the ee points depend on the
    state), "target_position" [N, T, 3], and with images "image" [N, T, H, W, 3] uint8.
    With images, obs is [low-dimensional obs, image flattened channel-first as floats in
    [0, 255]] and obs_slices names both parts ("image": the flattened image).
    """

    def __init__(self, task: Task | str | Path, noise: NoiseSpec | None = None, render: RenderSpec | None = None) -> None:
        self.task = task if isinstance(task, Task) else load_task(task)
        self.noise_spec = self.task.config.noise if noise is None else noise
        if not self.noise_spec.smooth_sigma >= 0:
            raise ValueError(f"noise.smooth_sigma: expected a number >= 0, got {self.noise_spec.smooth_sigma}")
        self.render_spec = self.task.config.render if render is None else render
        self.model = self.task.build_model()
        self.data = mujoco.MjData(self.model)
        self.assembler = StateAssembler(self.task.config, self.model, self.data)
        self.T, self.dX, self.dU = self.task.T, self.task.dX, self.task.dU
        self.dO = self.task.dO
        self._substeps = self.task.config.substeps
        self._target_body = self.model.body(self.task.config.target_body).id
        self._qpos_adr = self.assembler.qpos_adr
        limited = self.model.actuator_ctrllimited.astype(bool)
        self.ctrl_low = np.where(limited, self.model.actuator_ctrlrange[:, 0], -np.inf)
        self.ctrl_high = np.where(limited, self.model.actuator_ctrlrange[:, 1], np.inf)
        self._obs_is_state = np.array_equal(self.task.obs_index, np.arange(self.dX))
        self._renderer: CameraRenderer | None = None

    def reset(self, condition: int | Condition) -> Condition:
        """Put the target body and the arm at ``condition`` (zero velocities); returns it."""
        cond = self.task.condition(condition)
        mujoco.mj_resetData(self.model, self.data)
        self.model.body_pos[self._target_body] = cond.target
        self.data.qpos[self._qpos_adr] = cond.qpos
        mujoco.mj_forward(self.model, self.data)
        return cond

    def state(self) -> np.ndarray:
        """The state x [dX] of the current data (kinematics refreshed first)."""
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        x = np.zeros(self.dX)
        self.assembler.write(x)
        return x

    def render(self) -> np.ndarray:
        """A camera image [H, W, 3] uint8 of the current data."""
        out = np.empty((self.render_spec.height, self.render_spec.width, 3), dtype=np.uint8)
        self.camera().render(self.data, out)
        return out

    def obs_layout(self, with_images: bool) -> tuple[int, dict[str, slice]]:
        """dO and obs_slices of the samples this agent records."""
        slices = dict(self.task.obs_slices)
        if not with_images:
            return self.dO, slices
        size = self.render_spec.height * self.render_spec.width * 3
        slices["image"] = slice(self.dO, self.dO + size)
        return self.dO + size, slices

    def sample(
        self,
        policy: Policy,
        condition: int | Condition | None = None,
        noise: np.ndarray | None = None,
        seed: int | None = None,
        with_images: bool = False,
    ) -> SampleBatch:
        if noise is not None:
            noise = check_array("noise", noise, (self.T, self.dU))
        return self._sample(self._runner(policy, "policy"), condition, noise, np.random.SeedSequence(seed), with_images)

    def sample_many(
        self,
        policies: Policy | Sequence[Policy],
        conditions: Sequence[int | Condition | None],
        noise: np.ndarray | None = None,
        seed: int | None = None,
        with_images: bool = False,
    ) -> SampleBatch:
        N = len(conditions)
        runners = [self._runner(p, name) for p, name in named_policies(policies, conditions)]
        if noise is not None:
            noise = check_array("noise", noise, (N, self.T, self.dU))
        seeds = np.random.SeedSequence(seed).spawn(N)
        return SampleBatch.concatenate(
            [
                self._sample(runners[i], conditions[i], None if noise is None else noise[i], seeds[i], with_images)
                for i in range(N)
            ]
        )

    def _runner(self, policy: object, name: str) -> Policy:
        """The Policy to run for ``policy``, refused up front when the dimensions it declares
        (T, dX, dU: those it has) differ from the agent's, so that no reset happens for it
        and the step loop needs no checks."""
        expected = {"T": self.T, "dX": self.dX, "dU": self.dU}
        declared = {key: getattr(policy, key) for key in expected if hasattr(policy, key)}
        if any(declared[key] != expected[key] for key in declared):
            want = ", ".join(f"{key}={value}" for key, value in expected.items())
            got = ", ".join(f"{key}={value}" for key, value in declared.items())
            raise ValueError(f"{name}: expected {want}, got {got}")
        return as_policy(policy)

    def _sample(
        self,
        policy: Policy,
        condition: int | Condition | None,
        noise: np.ndarray | None,
        seed: np.random.SeedSequence,
        with_images: bool,
    ) -> SampleBatch:
        condition_seed, noise_seed = seed.spawn(2)
        if condition is None:
            condition = self.task.random_condition(np.random.default_rng(condition_seed))
        if noise is None:
            ns = self.noise_spec
            noise = draw_noise(np.random.default_rng(noise_seed), 1, self.T, self.dU, ns.smooth_sigma, ns.renorm)[0]
        cond = self.reset(condition)
        T, dX = self.T, self.dX
        dO, obs_slices = self.obs_layout(with_images)
        X = np.zeros((T, dX))
        U = np.zeros((T, self.dU))
        O = X if self._obs_is_state and not with_images else np.zeros((T, dO))
        J = np.zeros((T, int(np.prod(self.task.ee_shape)), dX)) if self.task.has_ee_jacobian else None
        images = np.zeros((T, *self.camera().shape), dtype=np.uint8) if with_images else None

        m, d, write = self.model, self.data, self.assembler.write
        ctrl, low, high, substeps = d.ctrl, self.ctrl_low, self.ctrl_high, self._substeps
        obs_index, n_low = self.task.obs_index, self.dO
        for t in range(T):
            if t:
                mujoco.mj_kinematics(m, d)
                mujoco.mj_comPos(m, d)
            x = X[t]
            write(x)
            if J is not None:
                self.assembler.ee_jacobian(J[t])
            if O is not X:
                np.take(x, obs_index, out=O[t, :n_low])
            if images is not None:
                self._renderer.render(d, images[t])
                O[t, n_low:] = images[t].transpose(2, 0, 1).ravel()
            u = U[t]
            np.minimum(np.maximum(policy.act(x, O[t], t, noise[t]), low, out=u), high, out=u)
            ctrl[:] = u
            mujoco.mj_step(m, d, substeps)
        self._check_stable()

        extras = {"target_position": np.tile(cond.target, (1, T, 1))}
        if J is not None:
            extras["ee_point_jacobians"] = J[None]
        if images is not None:
            extras["image"] = images[None]
        return SampleBatch(X[None], U[None], O[None], noise[None], self.task.state_slices, obs_slices, extras)

    def camera(self) -> CameraRenderer:
        """The (lazily created) camera renderer of this agent."""
        if self._renderer is None:
            self._renderer = CameraRenderer(self.model, self.render_spec)
        return self._renderer

    def _check_stable(self) -> None:
        """MuJoCo silently resets a diverged simulation; a sample from one would be garbage."""
        bad = self.data.warning[int(mujoco.mjtWarning.mjWARN_BADQACC)].number
        if bad:
            raise RuntimeError(
                f"simulation of task {self.task.name!r} diverged (bad accelerations {bad} times); "
                "the policy's torques or the model are unstable"
            )

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
