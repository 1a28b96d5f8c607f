"""Offscreen RGB camera images of a task (EGL when headless)."""

from __future__ import annotations

import mujoco
import numpy as np

from gps_ros.sim.config import RenderSpec


class CameraRenderer:
    """Renders ``spec.camera`` of ``data`` into uint8 [H, W, 3] images.

    Shadows and reflections are off: they cost most of the frame time and carry no
    information a policy needs. Needs current kinematics (mj_kinematics) in data.
    """

    def __init__(self, model: mujoco.MjModel, spec: RenderSpec) -> None:
        if spec.width < 1 or spec.height < 1:
            raise ValueError(f"render.width, render.height: expected positive sizes, got {spec.width}x{spec.height}")
        if spec.width > model.vis.global_.offwidth or spec.height > model.vis.global_.offheight:
            raise ValueError(
                f"render.width, render.height: expected at most the model's offscreen buffer "
                f"{model.vis.global_.offwidth}x{model.vis.global_.offheight}, got {spec.width}x{spec.height}"
            )
        self.camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, spec.camera)
        if self.camera < 0:
            raise ValueError(f"render.camera: expected a camera of the model, got {spec.camera!r}")
        self.shape = (spec.height, spec.width, 3)
        try:
            self._renderer = mujoco.Renderer(model, spec.height, spec.width)
        except Exception as exc:  # mujoco raises several types for a missing GL platform
            raise RuntimeError(
                f"offscreen rendering unavailable ({exc}); headless machines need MUJOCO_GL=egl set before "
                "mujoco is first imported (importing gps_ros.sim first does that)"
            ) from exc
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self, data: mujoco.MjData, out: np.ndarray) -> None:
        """Render into out [H, W, 3] uint8."""
        self._renderer.update_scene(data, camera=self.camera)
        self._renderer.render(out=out)

    def close(self) -> None:
        self._renderer.close()
