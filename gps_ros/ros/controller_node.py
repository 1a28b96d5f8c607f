"""controller node: runs trials (gps_ros/action/RunTrial) on the arm, sim or hardware alike.

Per control step: take the JointState, compute x (StateEstimator: the task's kinematic
model) and the observation, u = policy (linear-Gaussian K x + k [+ chol(C) eps], or the
neural policy on the observation), clamp u to the effort limits, publish the effort
command, a TrialStep for the recorder and, every feedback_every steps, the action
feedback. The result is the Sample (trial_id echoed). Recorded noise: the eps applied (drawn from noise_seed, or the neural
policy's pre-drawn noise); zeros when the noise was folded into k (the learner holds it).

Timing. lock_step true (with the sim node in lock-step): step t waits for the
JointState its command of step t-1 produced (stamp newer than the previous step's).
Between trials nothing is sent (the sim does not move without commands; a hold command
would move it away from the reset state). lock_step false (hardware, free-running sim):
steps are paced on the steady clock at the control period from step 0, each with the
latest JointState; between trials the hold PD runs at that rate. Step 0 uses a JointState
stamped at or after the goal's start_stamp when one is given (the sim's ResetScene returns
it), else one received after the goal was accepted, so it never uses one from before a
reset.

Refusals. A goal is checked in full before anything moves (gps_ros.ros.trial_policy).
An invalid goal is accepted and aborted at once, because a rejected ROS 2 goal carries
no reason: action status ABORTED, result.sample.status STATUS_ABORTED, steps_completed
0 and abort_reason "invalid goal: <field>: <expected>, got <given>". A goal arriving
while a trial runs is aborted the same way ("busy: ...").

Safety. A joint outside its position/velocity limits, no new JointState within
state_timeout (watchdog, steady clock), a non-finite action or a cancel ends the trial:
free-running, the hold PD (on_abort "hold") or zero torque ("zero") is commanded; in
lock-step nothing is (the sim stands still without commands, and a command still in flight
when the learner resets the scene would step the new scene); the result has status ABORTED
(CANCELED for a cancel) and abort_reason says why.

The target position (in x: target-relative ee points, target features) is the goal's
target_position when given (after a random placement the learner copies it from the
ResetScene result), else parameter target_position when set, else the fixed target of
the goal's condition.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from gps_ros.core.samples import TRIAL_ABORTED, TRIAL_COMPLETE, SampleBatch, TrialRecord
from gps_ros.core.validation import check_array
from gps_ros.ros import require_ros
from gps_ros.ros.interfaces import CAMERA_IMAGE, EFFORT_COMMANDS, JOINT_STATES, RUN_TRIAL, TRIAL_STEPS
from gps_ros.ros.node_main import spin_node_main
from gps_ros.ros.safety import (
    ON_ABORT_MODES, SafetyLimits, clamp_effort, hold_effort, is_stale, limit_violation, per_joint, safe_effort,
)
from gps_ros.ros.state_estimator import StateEstimator
from gps_ros.ros.trial_policy import IMAGE, TrialPlan, plan_trial
from gps_ros.sim import load_task

rclpy = require_ros("rclpy", "the controller node")
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult  # noqa: E402
from rclpy.action import ActionServer, CancelResponse, GoalResponse  # noqa: E402
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup  # noqa: E402
from rclpy.exceptions import ParameterUninitializedException  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from gps_ros.action import RunTrial  # noqa: E402
from gps_ros.msg import Sample, TrialStep  # noqa: E402
from gps_ros.ros.conversions import (  # noqa: E402
    TrialStepData, image_from_msg, joint_state_to_arrays, layout_to_msgs, sample_to_msg, stamp_to_ns, trial_step_to_msg,
)

DOUBLES = Parameter.Type.DOUBLE_ARRAY


@dataclass(frozen=True)
class Measurement:
    """One JointState: q [n], q̇ [n], its stamp, when it arrived (steady s), arrival count."""

    q: np.ndarray
    qd: np.ndarray
    stamp_ns: int
    received_s: float
    seq: int


class TrialEnded(Exception):
    """Ends a trial early; the message is the abort reason."""


class ControllerNode(Node):
    def __init__(self) -> None:
        super().__init__("controller")
        p = self._param
        self.task = load_task(p("task", "reacher3", "task name (config/tasks/<task>.yaml) or YAML path: joints, state "
                                "layout, kinematic model"))
        self.lock_step = p("lock_step", False, "true: wait for the JointState each command produces (sim in "
                           "lock-step); false: pace steps on the steady clock (hardware, free-running sim)")
        self.period = p("control_period", 0.0, "seconds per control step; 0 = the task's dt") or self.task.dt
        self.max_horizon = p("max_horizon", 1000, "longest trial (steps) a goal may ask for")
        self.state_timeout = p("state_timeout", 0.5, "watchdog: end the trial when no new JointState arrives within "
                               "this many seconds (steady clock)")
        self.on_abort = p("on_abort", "hold", f"free-running: command after a trial ends early, one of "
                          f"{ON_ABORT_MODES} (lock-step sends none)")
        if self.on_abort not in ON_ABORT_MODES:
            raise ValueError(f"on_abort: expected one of {ON_ABORT_MODES}, got {self.on_abort!r}")
        self.startup_timeout = p("startup_timeout", 10.0, "s a trial waits for the first JointState ever and for a "
                                 "subscriber of the effort commands (DDS discovery of freshly started nodes)")
        self.feedback_every = p("feedback_every", 10, "steps between RunTrial feedback messages (and the last step); "
                                "each one costs the controller and the client a message")
        if self.feedback_every < 1:
            raise ValueError(f"feedback_every: expected an integer >= 1, got {self.feedback_every}")
        camera = p("camera_enabled", False, "subscribe to camera images (needed by trials with images)")
        self.limits = self._limits()
        p("target_position", DOUBLES, "target position [3] (m, world) used in x; unset/empty = the fixed target of the "
          "goal's condition")
        p("hold_position", DOUBLES, "joint positions the hold PD moves to between trials; unset/empty = the pose where "
          "the last trial ended")
        self.add_on_set_parameters_callback(self._check_parameters)

        self.estimator = StateEstimator(self.task)
        self.joint_names = list(self.task.config.joints)
        render = self.task.config.render
        self.image_shape = (render.height, render.width) if camera else None
        self._cv = threading.Condition()
        self._state: Measurement | None = None
        self._seq = 0
        self._image: tuple[int, np.ndarray] | None = None
        self._trial_lock = threading.Lock()
        self._in_trial = False
        self._q_hold: np.ndarray | None = None

        inputs = MutuallyExclusiveCallbackGroup()
        self.effort_pub = self.create_publisher(Float64MultiArray, EFFORT_COMMANDS, 10)
        self.step_pub = self.create_publisher(TrialStep, TRIAL_STEPS, 100)
        self.create_subscription(JointState, JOINT_STATES, self._on_joint_state, 10, callback_group=inputs)
        if camera:
            self.create_subscription(Image, CAMERA_IMAGE, self._on_image, 10, callback_group=inputs)
        self._server = ActionServer(
            self, RunTrial, RUN_TRIAL, execute_callback=self._execute,
            goal_callback=lambda goal: GoalResponse.ACCEPT, cancel_callback=lambda handle: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        if not self.lock_step:
            self.create_timer(self.period, self._hold_tick, callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f"task {self.task.name}: joints {self.joint_names}, control period {self.period} s, "
                               f"{'lock-step' if self.lock_step else 'free-running'}")

    # --- parameters ---------------------------------------------------------------------

    def _param(self, name: str, default, description: str):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    def _limits(self) -> SafetyLimits:
        p, n, model = self._param, len(self.task.config.joints), self.task.model
        ids = [model.joint(j).id for j in self.task.config.joints]
        limited = model.actuator_ctrllimited.astype(bool)
        effort = p("effort_limits", DOUBLES, "|torque| limit per joint (N*m, one value = all joints); unset = the "
                   "actuators' ctrlrange")
        margin = p("position_limit_margin", 0.1, "with position limits unset: how far past the model's joint range "
                   "(rad or m) a joint may go before the trial ends")
        jlimited = model.jnt_limited[ids].astype(bool)
        pos_low = p("position_limits_low", DOUBLES, "lowest joint positions; unset = model range - margin")
        pos_high = p("position_limits_high", DOUBLES, "highest joint positions; unset = model range + margin")
        velocity = p("velocity_limits", DOUBLES, "|joint velocity| limits; unset = none")
        kp = p("hold_kp", [2.0], "hold PD position gains (N*m/rad), one value or one per joint; the PD runs at the "
              "control period, so stiff gains on a light arm oscillate")
        kd = p("hold_kd", [0.2], "hold PD velocity gains (N*m s/rad), one value or one per joint")
        if effort:
            e = per_joint("effort_limits", effort, n, np.zeros(n))
            low, high = -e, e
        else:
            low = np.where(limited, model.actuator_ctrlrange[:, 0], -np.inf)
            high = np.where(limited, model.actuator_ctrlrange[:, 1], np.inf)
        range_low = np.where(jlimited, model.jnt_range[ids, 0] - margin, -np.inf)
        range_high = np.where(jlimited, model.jnt_range[ids, 1] + margin, np.inf)
        return SafetyLimits(
            tuple(self.task.config.joints), low, high,
            per_joint("position_limits_low", pos_low or [], n, range_low),
            per_joint("position_limits_high", pos_high or [], n, range_high),
            per_joint("velocity_limits", velocity or [], n, np.full(n, np.inf)),
            per_joint("hold_kp", kp, n, np.zeros(n)), per_joint("hold_kd", kd, n, np.zeros(n)),
        )

    def _check_parameters(self, params) -> SetParametersResult:
        sizes = {"target_position": 3, "hold_position": len(self.task.config.joints)}
        for param in params:
            if param.name in sizes and param.value is not None and len(param.value):
                values = np.asarray(param.value, dtype=float)
                if values.size != sizes[param.name] or not np.all(np.isfinite(values)):
                    return SetParametersResult(successful=False, reason=f"{param.name}: expected {sizes[param.name]} "
                                               f"finite numbers, got {list(param.value)}")
        return SetParametersResult(successful=True)

    def _optional(self, name: str) -> np.ndarray | None:
        try:
            value = self.get_parameter(name).value
        except ParameterUninitializedException:
            return None
        return None if value is None or not len(value) else np.asarray(value, dtype=float)

    def _target_for(self, goal) -> np.ndarray:
        """The goal's target_position, else the parameter, else the fixed target of goal.condition."""
        if len(goal.target_position):
            return check_array("target_position", goal.target_position, (3,))
        condition = int(goal.condition)
        target = self._optional("target_position")
        if target is not None:
            return target
        if condition >= len(self.task.conditions):
            raise ValueError(f"condition: expected an index in [0, {len(self.task.conditions)}) of the task's fixed "
                             f"conditions (or parameter target_position set), got {condition}")
        return self.task.conditions[condition].target

    # --- inputs -------------------------------------------------------------------------

    def _on_joint_state(self, msg) -> None:
        try:
            q, qd = joint_state_to_arrays(msg, self.joint_names)
        except ValueError as err:
            self.get_logger().warning(f"joint state ignored: {err}", throttle_duration_sec=1.0)
            return
        with self._cv:
            self._seq += 1
            self._state = Measurement(q, qd, stamp_to_ns(msg.header.stamp), time.monotonic(), self._seq)
            self._cv.notify_all()

    def _on_image(self, msg) -> None:
        try:
            image = image_from_msg(msg, "camera image")
        except ValueError as err:
            self.get_logger().warning(f"camera image ignored: {err}", throttle_duration_sec=1.0)
            return
        with self._cv:
            self._image = (stamp_to_ns(msg.header.stamp), image)
            self._cv.notify_all()

    def _command(self, u: np.ndarray) -> None:
        self.effort_pub.publish(Float64MultiArray(data=u.tolist()))

    def _hold_tick(self) -> None:
        """Free-running, between trials: the hold PD toward hold_position or the last pose."""
        with self._cv:
            state = self._state
        if self._in_trial or state is None:
            return
        if is_stale(state.received_s, time.monotonic(), self.state_timeout):
            self.get_logger().warning("no recent joint state: hold PD paused", throttle_duration_sec=2.0)
            return
        if self._q_hold is None:
            self._q_hold = state.q
        target = self._optional("hold_position")
        self._command(hold_effort(state.q, state.qd, self._q_hold if target is None else target, self.limits))

    # --- trials -------------------------------------------------------------------------

    def _execute(self, goal_handle):
        goal = goal_handle.request
        with self._cv:
            accepted_seq = self._seq
        if not self._trial_lock.acquire(blocking=False):
            return self._refuse(goal_handle, "busy: another trial is running")
        try:
            try:
                plan = plan_trial(goal, self.estimator.state_slices, len(self.joint_names), self.period,
                                  self.max_horizon, self.image_shape)
                self.estimator.set_target(self._target_for(goal))
            except ValueError as err:
                return self._refuse(goal_handle, f"invalid goal: {err}")
            self._in_trial = True
            return self._run(goal_handle, plan, accepted_seq, stamp_to_ns(goal.start_stamp))
        finally:
            self._in_trial = False
            self._trial_lock.release()

    def _refuse(self, goal_handle, reason: str):
        goal = goal_handle.request
        self.get_logger().error(f"trial {goal.trial_id} refused, nothing commanded: {reason}")
        sample = Sample(trial_id=goal.trial_id, condition=goal.condition, horizon=goal.horizon,
                        status=Sample.STATUS_ABORTED, abort_reason=reason)
        goal_handle.abort()
        return RunTrial.Result(sample=sample)

    def _run(self, goal_handle, plan: TrialPlan, accepted_seq: int, start_stamp_ns: int):
        T, dX, dU = plan.horizon, plan.state_index.size, len(self.joint_names)
        n_low = plan.obs_index.size
        X, U, O = np.zeros((T, dX)), np.zeros((T, dU)), np.zeros((T, plan.dO))
        stamps = np.zeros(T, dtype=np.int64)
        images = np.zeros((T, *self.image_shape, 3), dtype=np.uint8) if plan.needs_images else None
        full = np.zeros(self.estimator.dX)
        reason, done, last, start = "", 0, None, 0.0
        try:
            self._wait_for_robot()
            for t in range(T):
                if goal_handle.is_cancel_requested:
                    raise TrialEnded("cancelled")
                state = self._next_state(t, last, accepted_seq, start_stamp_ns, start)
                if last is None:
                    start = time.monotonic()
                last = state
                violation = limit_violation(state.q, state.qd, self.limits)
                if violation:
                    raise TrialEnded(violation)
                self.estimator.state(state.q, state.qd, full)
                np.take(full, plan.state_index, out=X[t])
                np.take(full, plan.obs_index, out=O[t, :n_low])
                if images is not None:
                    images[t] = self._image_at(state.stamp_ns)
                    if plan.image_in_obs:
                        O[t, n_low:] = images[t].transpose(2, 0, 1).ravel()
                u = plan.policy.act(X[t], O[t], t, plan.noise[t] if plan.apply_noise else None)
                if not np.all(np.isfinite(u)):
                    raise TrialEnded(f"policy: non-finite action {np.asarray(u).tolist()} at step {t}")
                U[t] = clamp_effort(u, self.limits)
                self._command(U[t])
                stamps[t] = state.stamp_ns
                done = t + 1
                self.step_pub.publish(trial_step_to_msg(TrialStepData(
                    plan.trial_id, plan.condition, t, T, state.stamp_ns, X[t], U[t], plan.noise[t], O[t],
                    images[t] if plan.record_images else None)))
                if done % self.feedback_every == 0 or done == T:
                    goal_handle.publish_feedback(RunTrial.Feedback(step=done, horizon=T))
        except TrialEnded as ended:
            reason = str(ended)
        with self._cv:
            latest = self._state
        if latest is not None:
            self._q_hold = latest.q
        if reason:
            self.get_logger().warning(f"trial {plan.trial_id} ended at step {done}/{T}: {reason}")
            if latest is not None and not self.lock_step:
                target = self._optional("hold_position")
                self._command(safe_effort(self.on_abort, latest.q, latest.qd,
                                          self._q_hold if target is None else target, self.limits))
        sample = self._sample(plan, done, X, U, O, stamps, images, reason)
        if not reason:
            goal_handle.succeed()
        elif reason == "cancelled":
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return RunTrial.Result(sample=sample)

    def _wait_for_robot(self) -> None:
        """Until the robot side is connected: a JointState has arrived and the effort commands have a subscriber."""
        end = time.monotonic() + self.startup_timeout
        with self._cv:
            self._cv.wait_for(lambda: self._state is not None, self.startup_timeout)
        while self.effort_pub.get_subscription_count() == 0 and time.monotonic() < end:
            time.sleep(0.01)
        if self._state is None or self.effort_pub.get_subscription_count() == 0:
            missing = "no joint state arrived" if self._state is None else "no subscriber of the effort commands"
            raise TrialEnded(f"robot not connected: within startup_timeout = {self.startup_timeout} s, {missing}")

    def _next_state(self, t: int, last: Measurement | None, accepted_seq: int, start_stamp_ns: int,
                    start: float) -> Measurement:
        """The JointState for step t (see the module docstring); raises TrialEnded from the watchdog.

        start_stamp_ns: the goal's start_stamp (0: none); start: steady time of step 0 (free-running pacing)."""
        if last is None or self.lock_step:
            if last is None and start_stamp_ns:
                fresh = lambda: self._state is not None and self._state.stamp_ns >= start_stamp_ns  # noqa: E731
            elif last is None:
                fresh = lambda: self._state is not None and self._state.seq > accepted_seq  # noqa: E731
            else:
                fresh = lambda: self._state.stamp_ns > last.stamp_ns  # noqa: E731
            with self._cv:
                if self._cv.wait_for(fresh, self.state_timeout):
                    return self._state
        else:
            delay = start + t * self.period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self._cv:
                state = self._state
            if not is_stale(state.received_s, time.monotonic(), self.state_timeout):
                return state
        raise TrialEnded(f"watchdog: no new joint state within state_timeout = {self.state_timeout} s at step {t}")

    def _image_at(self, stamp_ns: int) -> np.ndarray:
        """Lock-step: the image with the joint state's stamp; free-running: the latest one."""
        if self.lock_step:
            ready = lambda: self._image is not None and self._image[0] == stamp_ns  # noqa: E731
        else:
            ready = lambda: self._image is not None  # noqa: E731
        with self._cv:
            if self._cv.wait_for(ready, self.state_timeout):
                return self._image[1]
        raise TrialEnded(f"watchdog: no camera image for stamp {stamp_ns} ns within state_timeout = "
                         f"{self.state_timeout} s")

    def _sample(self, plan: TrialPlan, done: int, X, U, O, stamps, images, reason: str):
        if done == 0:
            msg = Sample(trial_id=plan.trial_id, condition=plan.condition, horizon=plan.horizon,
                         dim_x=X.shape[1], dim_u=U.shape[1], dim_obs=O.shape[1],
                         status=Sample.STATUS_ABORTED, abort_reason=reason)
            msg.state_layout = layout_to_msgs(plan.state_slices)
            msg.observation_layout = layout_to_msgs(plan.obs_slices)
            return msg
        extras = {IMAGE: images[None, :done]} if plan.record_images else {}
        batch = SampleBatch(X[None, :done], U[None, :done], O[None, :done], plan.noise[None, :done],
                            plan.state_slices, plan.obs_slices, extras)
        record = TrialRecord(plan.trial_id, plan.condition, plan.horizon, batch, stamps[:done],
                             TRIAL_ABORTED if reason else TRIAL_COMPLETE, reason)
        return sample_to_msg(record)


def main(argv: list[str] | None = None) -> int:
    return spin_node_main(ControllerNode, argv, threads=4)
