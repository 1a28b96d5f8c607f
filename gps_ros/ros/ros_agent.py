"""RosAgent: the Agent interface over ROS 2 (the learner drives trials on the controller node).

Each trial: reset the scene (ResetScene service of the sim, or a ResetRequest to the
operator, blocking until it is acknowledged), send a RunTrial goal, wait for its result
with a timeout (cancel and retry on timeout, rejection, abort or a trial_id that is not
the goal's), optionally (wait_for_recorder) require a recorder on the graph before the
trial and its confirmation that the trial is on disk complete after it (retry when it
does not come), and return the sample. Every wait spins the agent's executor, so the
AcknowledgeReset service it serves answers while it blocks.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from gps_ros.agents.base import Agent, named_policies
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.noise import draw_noise
from gps_ros.core.samples import TRIAL_COMPLETE, SampleBatch, TrialRecord
from gps_ros.core.validation import check_array
from gps_ros.ros import require_ros
from gps_ros.ros.conversions import (
    LinearGaussianCommand,
    NeuralCommand,
    linear_gaussian_to_msg,
    neural_to_msg,
    sample_from_msg,
)
from gps_ros.ros.interfaces import (
    ACKNOWLEDGE_RESET,
    RECORDED_SAMPLES,
    RESET_REQUEST,
    RESET_SCENE,
    RUN_TRIAL,
    TRIAL_STEPS,
)

RESET_MODES = ("sim", "manual", "none")
_NOT_NETWORK = ("normalization.shift", "normalization.scale", "covariance")


class TrialFailed(RuntimeError):
    """One attempt at a trial failed (timeout, rejection, abort, wrong trial id, failed reset)."""


@dataclass(frozen=True)
class RosAgentConfig:
    """T, dX, dU, dO: the task's dimensions; dt: seconds per step; state_sensors /
    observation_sensors: the sensor names the controller assembles x and o from.

    reset: "sim" (ResetScene service), "manual" (ResetRequest + acknowledgement) or "none".
    server_timeout: s to wait for the controller / reset service, for goal acceptance and for a
    recorder on the graph (wait_for_recorder);
    trial_timeout: s to wait for a trial's result (None: 3 T dt + 10); retries: extra
    attempts after a failed one; wait_for_recorder: a trial is used only once the recorder
    confirms it is on disk complete (and none starts while no recorder is on the graph);
    recorder_timeout: s to wait for that confirmation (a trial confirmed later is on disk
    but not used); reset_timeout: s for the sim reset;
    manual_timeout: s for the operator (None: wait forever); terminal: Enter on stdin
    also acknowledges; condition_instruction / random_instruction: operator text
    (``{condition}`` is replaced); noise_smoothing / noise_renorm: how noise is drawn when
    not given; first_trial_id: the id of the first trial (resume: after the recorded ones).
    """

    T: int
    dX: int
    dU: int
    dO: int
    dt: float = 0.05
    state_sensors: tuple[str, ...] = ()
    observation_sensors: tuple[str, ...] = ()
    reset: str = "sim"
    server_timeout: float = 10.0
    trial_timeout: float | None = None
    retries: int = 2
    wait_for_recorder: bool = True
    recorder_timeout: float = 10.0
    reset_timeout: float = 30.0
    manual_timeout: float | None = None
    terminal: bool = False
    condition_instruction: str = "place the target at condition {condition}"
    random_instruction: str = "place the target anywhere"
    noise_smoothing: float = 0.0
    noise_renorm: bool = True
    first_trial_id: int = 1

    def __post_init__(self) -> None:
        for name in ("T", "dX", "dU", "dO", "first_trial_id"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)}")
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset: expected one of {RESET_MODES}, got {self.reset!r}")
        if int(self.retries) < 0:
            raise ValueError(f"retries: expected an integer >= 0, got {self.retries}")
        for name in ("dt", "server_timeout", "trial_timeout", "recorder_timeout", "reset_timeout", "manual_timeout"):
            value = getattr(self, name)
            if value is not None and not float(value) > 0:
                raise ValueError(f"{name}: expected seconds > 0, got {value}")
        if not float(self.noise_smoothing) >= 0:
            raise ValueError(f"noise_smoothing: expected a number >= 0, got {self.noise_smoothing}")

    @property
    def result_timeout(self) -> float:
        return self.trial_timeout if self.trial_timeout is not None else 3 * self.T * self.dt + 10.0


def declare_agent_parameters(node, T: int, dX: int, dU: int, dO: int) -> RosAgentConfig:
    """Declare the agent's timing, retry and reset settings as parameters of ``node``
    (0 means "none" for the optional timeouts) and return the config they give."""
    from rcl_interfaces.msg import ParameterDescriptor

    defaults = RosAgentConfig(T, dX, dU, dO)
    docs = {
        "dt": "seconds per control step", "reset": "scene reset: sim | manual | none",
        "server_timeout": "s to wait for the controller / reset service, goal acceptance and a recorder on the graph",
        "trial_timeout": "s to wait for a trial's result; 0 = 3 T dt + 10",
        "retries": "extra attempts after a failed trial", "wait_for_recorder": "use a trial only once the recorder confirms it on disk; start none without a recorder",
        "recorder_timeout": "s to wait for the recorder", "reset_timeout": "s to wait for the sim reset",
        "manual_timeout": "s to wait for the operator; 0 = forever", "terminal": "Enter on the terminal acknowledges a reset",
        "condition_instruction": "operator text for a condition ({condition} is replaced)",
        "random_instruction": "operator text for a free placement", "noise_smoothing": "std-dev in steps of the noise filter",
    }
    values = {}
    for name, doc in docs.items():
        default = getattr(defaults, name)
        value = node.declare_parameter(name, 0.0 if default is None else default, ParameterDescriptor(description=doc)).value
        values[name] = None if name in ("trial_timeout", "manual_timeout") and value == 0 else value
    return RosAgentConfig(T, dX, dU, dO, **values)


def agent_config_for_task(node, task) -> RosAgentConfig:
    """declare_agent_parameters for ``task``'s dimensions, with its state and observation
    sensors; reset "sim" becomes "manual" when ``node`` does not run on sim time (on
    hardware nobody serves ResetScene: the operator resets the scene)."""
    config = declare_agent_parameters(node, task.T, task.dX, task.dU, task.dO)
    on_hardware = not node.get_parameter("use_sim_time").value
    return replace(config, reset="manual" if config.reset == "sim" and on_hardware else config.reset,
                   state_sensors=tuple(task.state_slices), observation_sensors=tuple(task.config.obs))


def neural_command(policy, noise: np.ndarray | None) -> NeuralCommand:
    """A GaussianPolicy (and noise [T, dU]) as carried by a RunTrial goal: the architecture
    dict, the network tensors in state_dict order (float32), obs normalised as
    (o - obs_mean) / obs_std (obs_std = 1 / the normalisation's scale), the covariance.
    The controller rebuilds it with trial_policy.gaussian_policy_from_command."""
    from gps_ros.policies.serialization import policy_to_flat

    flat, description = policy_to_flat(policy)
    layout = json.loads(description)["layout"]
    sizes = [int(np.prod(shape)) for _, shape in layout]
    chunks = {name: chunk.reshape(shape) for (name, shape), chunk in zip(layout, np.split(flat, np.cumsum(sizes)[:-1]))}
    parameters = {name: chunk.astype(np.float32) for name, chunk in chunks.items() if name not in _NOT_NETWORK}
    return NeuralCommand(policy.architecture.to_dict(), parameters, chunks["normalization.shift"],
                         1.0 / chunks["normalization.scale"], chunks["covariance"], noise)


class RosAgent(Agent):
    """Samples trials through the controller node. node: the rclpy Node the agent's
    clients, publisher and service live on; executor: the one that spins it (a private
    SingleThreadedExecutor when None). Conditions are indices or None (random placement)."""

    def __init__(self, node, config: RosAgentConfig, executor=None) -> None:
        require_ros("rclpy", "RosAgent")
        from rclpy.action import ActionClient
        from builtin_interfaces.msg import Time
        from rclpy.executors import SingleThreadedExecutor

        from gps_ros.action import RunTrial
        from gps_ros.msg import ResetRequest, Sample
        from gps_ros.srv import AcknowledgeReset, ResetScene

        self._RunTrial, self._ResetRequest, self._ResetScene, self._Time = RunTrial, ResetRequest, ResetScene, Time
        self.config = config
        self.T, self.dX, self.dU, self.dO = config.T, config.dX, config.dU, config.dO
        self.node = node
        if executor is None:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
        self.executor = executor
        self.next_trial_id = int(config.first_trial_id)
        self.trial_client = ActionClient(node, RunTrial, RUN_TRIAL)
        self.reset_client = node.create_client(ResetScene, RESET_SCENE) if config.reset == "sim" else None
        # trial id -> whether the recorder wrote it complete
        self.recorded: dict[int, bool] = {}
        node.create_subscription(Sample, RECORDED_SAMPLES, self._on_recorded, 100)
        self._request_pub = node.create_publisher(ResetRequest, RESET_REQUEST, 10)
        node.create_service(AcknowledgeReset, ACKNOWLEDGE_RESET, self._on_acknowledge)
        self._next_request_id = 1
        self._pending_request: int | None = None
        self._acknowledged: int | None = None
        self._lines: queue.Queue[str] | None = None
        if config.terminal and sys.stdin is not None and sys.stdin.isatty():
            self._lines = queue.Queue()
            threading.Thread(target=self._read_terminal, daemon=True).start()

    # --- Agent ----------------------------------------------------------------------------

    def sample(self, policy, condition: int | None = None, noise: np.ndarray | None = None, seed: int | None = None,
               with_images: bool = False) -> SampleBatch:
        if noise is not None:
            noise = check_array("noise", noise, (self.T, self.dU))
        goal, reset_seed = self._goal(policy, "policy", noise, np.random.SeedSequence(seed), condition, with_images)
        return self._run(goal, condition, reset_seed).sample

    def sample_many(self, policies, conditions: Sequence[int | None], noise: np.ndarray | None = None,
                    seed: int | None = None, with_images: bool = False) -> SampleBatch:
        N = len(conditions)
        named = named_policies(policies, conditions)
        if noise is not None:
            noise = check_array("noise", noise, (N, self.T, self.dU))
        seeds = np.random.SeedSequence(seed).spawn(N)
        goals = [self._goal(p, name, None if noise is None else noise[i], seeds[i], conditions[i], with_images)
                 for i, (p, name) in enumerate(named)]
        return SampleBatch.concatenate([self._run(goal, c, reset_seed).sample for (goal, reset_seed), c in zip(goals, conditions)])

    # --- goals ----------------------------------------------------------------------------

    def _goal(self, policy, name: str, noise, seed: np.random.SeedSequence, condition, with_images: bool):
        """The RunTrial goal (trial_id set per attempt) and the seed of its random reset;
        every check happens here, before any reset."""
        if condition is not None and (isinstance(condition, bool) or not isinstance(condition, (int, np.integer)) or condition < 0):
            raise ValueError(f"condition: expected a condition index >= 0 or None (random placement), got {condition!r}")
        condition_seed, noise_seed = seed.spawn(2)
        if noise is None:
            rng = np.random.default_rng(noise_seed)
            noise = draw_noise(rng, 1, self.T, self.dU, self.config.noise_smoothing, self.config.noise_renorm)[0]
        Goal = self._RunTrial.Goal
        goal = Goal(horizon=self.T, dt=float(self.config.dt), record_images=bool(with_images),
                    condition=0 if condition is None else int(condition))
        goal.state_sensors = list(self.config.state_sensors)
        goal.observation_sensors = list(self.config.observation_sensors)
        if isinstance(policy, LinearGaussianPolicy):
            if (policy.T, policy.dX, policy.dU) != (self.T, self.dX, self.dU):
                raise ValueError(f"{name}: expected T={self.T}, dX={self.dX}, dU={self.dU}, "
                                 f"got T={policy.T}, dX={policy.dX}, dU={policy.dU}")
            folded = policy.fold_noise(noise)
            goal.policy_type = Goal.POLICY_LINEAR_GAUSSIAN
            goal.linear_gaussian = linear_gaussian_to_msg(LinearGaussianCommand(folded.K, folded.k))
        elif hasattr(policy, "architecture") and hasattr(policy, "normalization"):
            arch = policy.architecture
            # with images the policy's observation also holds the flattened image, so dO grows
            if arch.dU != self.dU or (arch.dO != self.dO and not with_images):
                raise ValueError(f"{name}: expected dO={self.dO}, dU={self.dU}, got dO={arch.dO}, dU={arch.dU}")
            goal.policy_type = Goal.POLICY_NEURAL
            goal.neural = neural_to_msg(neural_command(policy, noise))
        else:
            raise ValueError(f"{name}: expected a LinearGaussianPolicy or a GaussianPolicy, got {type(policy).__name__}")
        return goal, int(condition_seed.generate_state(1)[0])

    def _run(self, goal, condition: int | None, reset_seed: int) -> TrialRecord:
        failures = []
        for attempt in range(self.config.retries + 1):
            goal.trial_id = self.next_trial_id
            self.next_trial_id += 1
            try:
                if self.config.wait_for_recorder:
                    self._require_recorder()
                goal.target_position, goal.start_stamp = self._reset(condition, reset_seed)
                record = self._attempt(goal)
                if self.config.wait_for_recorder:
                    # the controller finished the trial, but unless the same sample is on disk it is run again
                    self._require_recorded(record.trial_id)
            except TrialFailed as err:
                failures.append(f"trial {goal.trial_id}: {err}")
                self.node.get_logger().warning(f"attempt {attempt + 1}/{self.config.retries + 1} failed: {failures[-1]}")
                continue
            return record
        raise RuntimeError(f"trial failed after {len(failures)} attempts: " + "; ".join(failures))

    def _attempt(self, goal) -> TrialRecord:
        cfg = self.config
        if not self._spin_until(self.trial_client.server_is_ready, cfg.server_timeout):
            raise TrialFailed(f"no RunTrial server on {self.node.resolve_topic_name(RUN_TRIAL)} within {cfg.server_timeout:g} s")
        sent = self.trial_client.send_goal_async(goal)
        if not self._spin_until(sent.done, cfg.server_timeout):
            raise TrialFailed(f"goal not answered within {cfg.server_timeout:g} s")
        handle = sent.result()
        if not handle.accepted:
            raise TrialFailed("goal rejected by the controller")
        result = handle.get_result_async()
        if not self._spin_until(result.done, cfg.result_timeout):
            cancel = handle.cancel_goal_async()
            self._spin_until(cancel.done, cfg.server_timeout)
            raise TrialFailed(f"no result within {cfg.result_timeout:g} s (timeout); goal cancelled")
        from action_msgs.msg import GoalStatus

        response = result.result()
        if response.status != GoalStatus.STATUS_SUCCEEDED:
            reason = response.result.sample.abort_reason or "no reason given"
            raise TrialFailed(f"goal ended with status {response.status} (5 = cancelled, 6 = aborted): {reason}")
        sample = response.result.sample
        if sample.trial_id != goal.trial_id:
            raise TrialFailed(f"result has trial_id {sample.trial_id}, expected the goal's {goal.trial_id}; rejected")
        try:
            record = sample_from_msg(sample)
        except ValueError as err:
            raise TrialFailed(f"malformed result sample: {err}") from None
        if record.status != TRIAL_COMPLETE:
            raise TrialFailed(f"trial aborted: {record.abort_reason}")
        got = (record.sample.T, record.sample.dX, record.sample.dU)
        if got != (self.T, self.dX, self.dU):
            raise TrialFailed(f"result sample has (T, dX, dU) = {got}, expected {(self.T, self.dX, self.dU)}")
        return record

    def _on_recorded(self, msg) -> None:
        self.recorded[int(msg.trial_id)] = msg.status == msg.STATUS_COMPLETE

    def _require_recorder(self) -> None:
        """A trial whose steps nobody records would be used but never reach the disk (a lock-step
        trial takes a fraction of a second, less than a late recorder needs to be discovered)."""
        cfg = self.config

        def present() -> bool:
            return self.node.count_subscribers(TRIAL_STEPS) > 0 and self.node.count_publishers(RECORDED_SAMPLES) > 0

        if not self._spin_until(present, cfg.server_timeout):
            raise TrialFailed(
                f"no recorder (subscriber of {self.node.resolve_topic_name(TRIAL_STEPS)} and publisher of "
                f"{self.node.resolve_topic_name(RECORDED_SAMPLES)}) within {cfg.server_timeout:g} s; "
                "start the recorder node or set wait_for_recorder:=false")

    def _require_recorded(self, trial_id: int) -> None:
        """Raises TrialFailed unless the recorder reports the trial on disk complete within recorder_timeout."""
        if not self._spin_until(lambda: trial_id in self.recorded, self.config.recorder_timeout):
            raise TrialFailed(f"the recorder did not confirm it within {self.config.recorder_timeout:g} s")
        if not self.recorded[trial_id]:
            raise TrialFailed("the recorder wrote it incomplete")

    # --- resets ---------------------------------------------------------------------------

    def _reset(self, condition: int | None, seed: int):
        """Reset the scene; returns the target position [3] and the reset state's stamp when
        the reset reports them (the sim's ResetScene), else [] and a zero stamp (the controller
        then uses its own target for the condition and the first state after the goal)."""
        mode_names = self._ResetScene.Request
        mode = mode_names.MODE_CONDITION if condition is not None else (
            mode_names.MODE_RANDOM if self.config.reset == "sim" else mode_names.MODE_OPERATOR)
        if self.config.reset == "sim":
            return self._reset_sim(mode, condition, seed)
        if self.config.reset == "manual":
            self._reset_manual(mode, condition, seed)
        return [], self._Time()

    def _reset_sim(self, mode: int, condition: int | None, seed: int):
        cfg = self.config
        if not self._spin_until(self.reset_client.service_is_ready, cfg.server_timeout):
            raise TrialFailed(f"no ResetScene service on {self.node.resolve_service_name(RESET_SCENE)} within {cfg.server_timeout:g} s")
        future = self.reset_client.call_async(self._ResetScene.Request(mode=mode, condition=condition or 0, seed=seed))
        if not self._spin_until(future.done, cfg.reset_timeout):
            raise TrialFailed(f"reset not done within {cfg.reset_timeout:g} s")
        if not future.result().success:
            raise TrialFailed(f"reset failed: {future.result().message}")
        return list(future.result().target_position), future.result().stamp

    def _reset_manual(self, mode: int, condition: int | None, seed: int) -> None:
        cfg = self.config
        instruction = (cfg.condition_instruction.format(condition=condition) if condition is not None
                       else cfg.random_instruction)
        request = self._ResetRequest(request_id=self._next_request_id, mode=mode, condition=condition or 0, seed=seed,
                                     instruction=instruction)
        self._next_request_id += 1
        self._pending_request, self._acknowledged = request.request_id, None
        if self._lines is not None:
            while not self._lines.empty():
                self._lines.get_nowait()
        prompt = f"reset {request.request_id}: {instruction}"
        if self._lines is not None:
            prompt += " -- press Enter when done"
        self.node.get_logger().info(prompt)
        deadline = None if cfg.manual_timeout is None else time.monotonic() + cfg.manual_timeout
        # republished so an operator console that starts late still sees the request
        while self._acknowledged != request.request_id:
            request.header.stamp = self.node.get_clock().now().to_msg()
            self._request_pub.publish(request)
            left = 2.0 if deadline is None else min(2.0, deadline - time.monotonic())
            if left <= 0:
                self._pending_request = None
                raise TrialFailed(f"reset {request.request_id} not acknowledged within {cfg.manual_timeout:g} s")
            self._spin_until(lambda: self._acknowledged == request.request_id or self._enter_pressed(), left)
        self._pending_request = None

    def _enter_pressed(self) -> bool:
        if self._lines is None or self._lines.empty():
            return False
        self._lines.get_nowait()
        self._acknowledged = self._pending_request
        return True

    def _on_acknowledge(self, request, response):
        if self._pending_request is None or request.request_id != self._pending_request:
            response.accepted = False
            response.message = f"no pending reset request with id {request.request_id} (pending: {self._pending_request})"
        else:
            self._acknowledged = request.request_id
            response.accepted = True
            response.message = f"reset {request.request_id} acknowledged"
        return response

    def _read_terminal(self) -> None:
        for line in sys.stdin:
            self._lines.put(line)

    # --- spinning -------------------------------------------------------------------------

    def _spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= end:
                return False
            self.executor.spin_once(timeout_sec=min(0.02, max(end - time.monotonic(), 0.0)))
        return True
