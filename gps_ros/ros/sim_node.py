"""sim node: a MuJoCo task behind the robot-side names the hardware serves.

Out: JointState (joint names and order of the task), camera Image (when enabled),
/clock (lock-step). In: effort commands (Float64MultiArray, task joint order, N*m;
clamped to the actuators' ctrlrange). Service: ResetScene (fixed condition or random
placement from a seed; returns the target position).

lock_step true: time advances only on commands. Each effort command advances exactly
one control period (``substeps`` physics steps); then the new JointState stamped with sim
time (physics steps x timestep) is published, so the controller waits for the state its
command produced and training runs as fast as both processes can go; with the camera
enabled an image with the same stamp goes out before each JointState. /clock follows at
most at ``clock_publish_rate`` on the wall clock (and on every reset and idle tick):
every node on sim time handles each /clock message, and one per step cost the graph
about 40 % of its speed (measured with `gps-ros bench ros`); the stamps, not the node
clocks, time the samples.

Sim time never goes back; a reset takes one physics step of sim time, so the reset
scene's states are stamped newer than any state before it (ResetScene returns that
stamp; the controller's step 0 waits for it, so a pre-reset state still in flight is
never used). A reset publishes the new state at once. While no commands come the
current state is re-published (same stamp, with /clock) at ``idle_publish_rate`` on the
wall clock, so a waiting controller sees the sim alive.

lock_step false (free-running, like hardware): physics at the model timestep follows
the wall clock; JointState (stamped with the node clock) at ``publish_rate``; the last
command is held.
"""

from __future__ import annotations

import time

import mujoco
import numpy as np

from gps_ros.ros import require_ros
from gps_ros.ros.interfaces import CAMERA_IMAGE, CLOCK, EFFORT_COMMANDS, JOINT_STATES, RESET_SCENE
from gps_ros.ros.node_main import spin_node_main
from gps_ros.sim import Condition, load_task
from gps_ros.sim.render import CameraRenderer

rclpy = require_ros("rclpy", "the sim node")
from rcl_interfaces.msg import ParameterDescriptor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from gps_ros.ros.conversions import image_to_msg, ns_to_stamp  # noqa: E402
from gps_ros.srv import ResetScene  # noqa: E402

# Free-running: at most this much physics is caught up in one timer tick (a stalled
# process must not then run seconds of physics in one burst).
MAX_CATCH_UP_S = 0.1


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = self._param
        self.task = load_task(p("task", "reacher3", "task name (config/tasks/<task>.yaml) or a task YAML path"))
        self.lock_step = p("lock_step", True, "true: advance one control period per effort command and publish /clock; "
                           "false: free-running physics on the wall clock, like hardware")
        initial = p("initial_condition", 0, "fixed condition the scene starts in")
        publish_rate = p("publish_rate", 100.0, "free-running: JointState rate (Hz, wall clock)")
        idle_rate = p("idle_publish_rate", 20.0,
                      "lock-step: re-publish the unchanged state at this rate (Hz, wall clock)")
        self.camera_enabled = p("camera_enabled", False, "publish camera images (render size/camera from the task)")
        camera_rate = p("camera_rate", 20.0, "free-running: image rate (Hz); lock-step publishes one per step")
        clock_rate = p("clock_publish_rate", 100.0, "lock-step: /clock at most this often (Hz, wall clock), and "
                       "always on a reset and while idle; 0 = after every step")
        self._clock_period = 1.0 / clock_rate if clock_rate > 0 else 0.0
        self._clock_published = -np.inf

        self.model = self.task.build_model()
        self.data = mujoco.MjData(self.model)
        self.joint_names = list(self.task.config.joints)
        ids = [self.model.joint(j).id for j in self.joint_names]
        self.qpos_adr = self.model.jnt_qposadr[ids]
        self.dof_adr = self.model.jnt_dofadr[ids]
        limited = self.model.actuator_ctrllimited.astype(bool)
        self.ctrl_low = np.where(limited, self.model.actuator_ctrlrange[:, 0], -np.inf)
        self.ctrl_high = np.where(limited, self.model.actuator_ctrlrange[:, 1], np.inf)
        self.substeps = self.task.config.substeps
        self.timestep_ns = round(self.model.opt.timestep * 1e9)
        self.physics_steps = 0
        self._target_body = self.model.body(self.task.config.target_body).id
        self.renderer = CameraRenderer(self.model, self.task.config.render) if self.camera_enabled else None
        self._image = np.zeros((self.task.config.render.height, self.task.config.render.width, 3), dtype=np.uint8)

        self.state_pub = self.create_publisher(JointState, JOINT_STATES, 10)
        self.image_pub = self.create_publisher(Image, CAMERA_IMAGE, 10) if self.camera_enabled else None
        self.clock_pub = self.create_publisher(Clock, CLOCK, 10) if self.lock_step else None
        self.create_subscription(Float64MultiArray, EFFORT_COMMANDS, self._on_command, 10)
        self.create_service(ResetScene, RESET_SCENE, self._on_reset)

        self.reset(self.task.condition(initial))
        if self.lock_step:
            self.create_timer(1.0 / idle_rate, self._idle_tick)
        else:
            self._wall_start = time.monotonic()
            self._wall_steps = 0
            self.create_timer(1.0 / publish_rate, self._free_run_tick)
            if self.camera_enabled:
                self.create_timer(1.0 / camera_rate, self._publish_image)
        self.get_logger().info(
            f"task {self.task.name}: joints {self.joint_names}, {'lock-step' if self.lock_step else 'free-running'}, "
            f"control period {self.task.dt} s = {self.substeps} x {self.model.opt.timestep} s"
        )

    def _param(self, name: str, default, description: str):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    @property
    def sim_time_ns(self) -> int:
        return self.physics_steps * self.timestep_ns

    def stamp_ns(self) -> int:
        """Measurement time: sim time in lock-step, the node clock when free-running (like hardware)."""
        return self.sim_time_ns if self.lock_step else self.get_clock().now().nanoseconds

    def reset(self, cond: Condition) -> None:
        """Target body and arm at ``cond``, zero velocities and torques (as MujocoAgent.reset)."""
        mujoco.mj_resetData(self.model, self.data)
        self.model.body_pos[self._target_body] = cond.target
        self.data.qpos[self.qpos_adr] = cond.qpos
        mujoco.mj_forward(self.model, self.data)
        if self.lock_step:
            self.physics_steps += 1
            self._publish_clock()
        self._publish_image()
        self._publish_state()

    def _on_reset(self, request, response):
        try:
            if request.mode == ResetScene.Request.MODE_CONDITION:
                cond = self.task.condition(int(request.condition))
            elif request.mode == ResetScene.Request.MODE_RANDOM:
                cond = self.task.random_condition(np.random.default_rng(int(request.seed)))
            else:
                raise ValueError(f"mode: expected MODE_CONDITION (0) or MODE_RANDOM (1) (the sim places the target "
                                 f"itself), got {request.mode}")
        except ValueError as err:
            response.success, response.message = False, str(err)
            return response
        self.reset(cond)
        response.success = True
        response.message = f"reset to target {cond.target.tolist()}, qpos {cond.qpos.tolist()}"
        response.target_position = cond.target.tolist()
        response.stamp = ns_to_stamp(self.stamp_ns())
        return response

    def _on_command(self, msg) -> None:
        u = np.asarray(msg.data, dtype=np.float64)
        if u.shape != (self.model.nu,) or not np.all(np.isfinite(u)):
            self.get_logger().warning(f"effort command ignored: expected {self.model.nu} finite values "
                                      f"(joints {self.joint_names}), got {u.tolist()}", throttle_duration_sec=1.0)
            return
        self.data.ctrl[:] = np.minimum(np.maximum(u, self.ctrl_low), self.ctrl_high)
        if not self.lock_step:
            return
        mujoco.mj_step(self.model, self.data, self.substeps)
        self.physics_steps += self.substeps
        self._check_stable()
        if time.monotonic() - self._clock_published >= self._clock_period:
            self._publish_clock()
        self._publish_image()
        self._publish_state()

    def _idle_tick(self) -> None:
        self._publish_clock()
        self._publish_state()

    def _free_run_tick(self) -> None:
        due = int((time.monotonic() - self._wall_start) / self.model.opt.timestep)
        n = due - self._wall_steps
        limit = int(MAX_CATCH_UP_S / self.model.opt.timestep)
        if n > limit:
            self.get_logger().warning(f"sim fell {n} steps behind the wall clock; skipping {n - limit}",
                                      throttle_duration_sec=1.0)
            self._wall_steps += n - limit
            n = limit
        if n > 0:
            mujoco.mj_step(self.model, self.data, n)
            self._wall_steps += n
            self.physics_steps += n
            self._check_stable()
        self._publish_state()

    def _check_stable(self) -> None:
        # MuJoCo silently resets a diverged simulation: say so, the states jump.
        if self.data.warning[int(mujoco.mjtWarning.mjWARN_BADQACC)].number:
            self.get_logger().error("simulation diverged (bad accelerations) and was reset by MuJoCo; reset the scene",
                                    throttle_duration_sec=1.0)

    def _publish_state(self) -> None:
        msg = JointState(name=self.joint_names)
        msg.header.stamp = ns_to_stamp(self.stamp_ns())
        msg.position = self.data.qpos[self.qpos_adr].tolist()
        msg.velocity = self.data.qvel[self.dof_adr].tolist()
        msg.effort = self.data.ctrl.tolist()
        self.state_pub.publish(msg)

    def _publish_image(self) -> None:
        if self.renderer is None:
            return
        # The renderer reads kinematics; after mj_step they are those of the previous state.
        # Refreshed as MujocoAgent does, so both render the same image.
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        self.renderer.render(self.data, self._image)
        self.image_pub.publish(image_to_msg(self._image, self.stamp_ns()))

    def _publish_clock(self) -> None:
        self.clock_pub.publish(Clock(clock=ns_to_stamp(self.sim_time_ns)))
        self._clock_published = time.monotonic()


def main(argv: list[str] | None = None) -> int:
    return spin_node_main(SimNode, argv)
