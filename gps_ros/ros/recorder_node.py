"""recorder node: assembles the controller's TrialStep stream into one sample per trial,
writes each trial to disk as an MCAP file, then publishes the Sample.

A trial ends when its last step (step == horizon - 1) arrives, when the controller
reports the RunTrial goal aborted or cancelled (after ``abort_grace`` seconds without
steps), when no step arrived for ``step_timeout`` seconds, or when the node shuts down.
Every trial is written, incomplete ones marked aborted with the reason; the Sample
holds the contiguous steps 0..m-1 and the file also holds every TrialStep received.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gps_ros.core.samples import TRIAL_ABORTED, TRIAL_COMPLETE, SampleBatch, TrialRecord, slices_from_layout
from gps_ros.ros import require_ros
from gps_ros.ros.conversions import TrialStepData, trial_step_from_msg
from gps_ros.ros.interfaces import RECORDED_SAMPLES, RUN_TRIAL, TRIAL_STEPS
from gps_ros.ros.mcap_io import SUFFIX, write_trial

NANOSECONDS = 1_000_000_000


@dataclass
class _OpenTrial:
    first: TrialStepData
    dims: tuple[int, int, int]
    steps: dict[int, TrialStepData] = field(default_factory=dict)
    messages: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last_arrival_ns: int = 0
    abort_reported: str = ""


class TrialAssembler:
    """Collects TrialStep messages per trial id and turns each finished trial into a
    TrialRecord (plus the raw messages). Pure: time comes in as ``now_ns``.

    state_layout / observation_layout: optional named slices of x / o stored with every
    sample whose dX / dO they fit.
    """

    def __init__(self, step_timeout: float, abort_grace: float, state_layout: dict | None = None,
                 observation_layout: dict | None = None) -> None:
        for name, value in (("step_timeout", step_timeout), ("abort_grace", abort_grace)):
            if not value > 0:
                raise ValueError(f"{name}: expected seconds > 0, got {value}")
        self.step_timeout_ns = int(step_timeout * NANOSECONDS)
        self.abort_grace_ns = int(abort_grace * NANOSECONDS)
        self.state_layout = state_layout or {}
        self.observation_layout = observation_layout or {}
        self.open: dict[int, _OpenTrial] = {}

    def add(self, msg, now_ns: int) -> list[tuple[TrialRecord, list]]:
        """Take one TrialStep; returns the trials it finished (its own, when it is the last step).

        A malformed step of an open trial marks that trial aborted; one that would start
        a trial raises ValueError (there is nothing to build a sample from)."""
        try:
            data = trial_step_from_msg(msg)
        except ValueError as err:
            trial = self.open.get(int(msg.trial_id))
            if trial is None:
                raise ValueError(f"trial_step (trial {msg.trial_id} step {msg.step}): cannot start a trial: {err}") from None
            trial.messages.append(msg)
            trial.problems.append(f"step {msg.step} malformed ({err})")
            trial.last_arrival_ns = now_ns
            return []
        trial = self.open.get(data.trial_id)
        if trial is None:
            dims = (data.state.size, data.action.size, data.observation.size)
            trial = self.open[data.trial_id] = _OpenTrial(data, dims)
        trial.messages.append(msg)
        trial.last_arrival_ns = now_ns
        self._check(trial, data)
        return [self._finish(data.trial_id, "")] if data.step == data.horizon - 1 else []

    def _check(self, trial: _OpenTrial, data: TrialStepData) -> None:
        first = trial.first
        if (data.condition, data.horizon) != (first.condition, first.horizon):
            trial.problems.append(f"step {data.step} has condition {data.condition} horizon {data.horizon}, "
                                  f"expected condition {first.condition} horizon {first.horizon}")
            return
        dims = (data.state.size, data.action.size, data.observation.size)
        if dims != trial.dims:
            trial.problems.append(f"step {data.step} has (dX, dU, dO) = {dims}, expected {trial.dims}")
            return
        if (data.image is None) != (first.image is None):
            trial.problems.append(f"step {data.step} {'lacks' if data.image is None else 'has'} an image, unlike step {first.step}")
            return
        if data.step in trial.steps:
            trial.problems.append(f"step {data.step} arrived twice")
            return
        trial.steps[data.step] = data

    def report_abort(self, reason: str, now_ns: int) -> None:
        """The controller ended the running trial early: the open trials end after ``abort_grace``."""
        for trial in self.open.values():
            trial.abort_reported = trial.abort_reported or reason
            trial.last_arrival_ns = max(trial.last_arrival_ns, now_ns)

    def expire(self, now_ns: int) -> list[tuple[TrialRecord, list]]:
        """Finish the trials that waited too long for their next step."""
        done = []
        for trial_id, trial in list(self.open.items()):
            wait = self.abort_grace_ns if trial.abort_reported else self.step_timeout_ns
            if now_ns - trial.last_arrival_ns >= wait:
                reason = trial.abort_reported or f"no step for {wait / NANOSECONDS:g} s (timeout)"
                done.append(self._finish(trial_id, reason))
        return done

    def flush(self, reason: str) -> list[tuple[TrialRecord, list]]:
        """Finish every open trial (e.g. at shutdown) as aborted with ``reason``."""
        return [self._finish(trial_id, reason) for trial_id in list(self.open)]

    def _finish(self, trial_id: int, reason: str) -> tuple[TrialRecord, list]:
        trial = self.open.pop(trial_id)
        horizon = trial.first.horizon
        missing = [t for t in range(horizon) if t not in trial.steps]
        problems = list(trial.problems)
        if missing:
            problems.append(f"missing steps {_ranges(missing)} of 0..{horizon - 1}")
        if reason:
            problems.insert(0, reason)
        m = next((t for t in range(horizon) if t not in trial.steps), horizon)
        rows = [trial.steps[t] for t in range(m)] or [trial.first]
        if not m:
            problems.append(f"step 0 missing: the sample holds step {trial.first.step} only")
        status = TRIAL_COMPLETE if not problems else TRIAL_ABORTED
        return self._record(trial, rows, status, "; ".join(problems)), trial.messages

    def _record(self, trial: _OpenTrial, rows: list[TrialStepData], status: str, reason: str) -> TrialRecord:
        dX, dU, dO = trial.dims
        extras = {"image": np.stack([r.image for r in rows])[None]} if trial.first.image is not None else {}
        batch = SampleBatch(
            np.stack([r.state for r in rows])[None], np.stack([r.action for r in rows])[None],
            np.stack([r.observation for r in rows])[None], np.stack([r.noise for r in rows])[None],
            _fitting(self.state_layout, dX), _fitting(self.observation_layout, dO), extras,
        )
        stamps = np.array([r.stamp_ns for r in rows], dtype=np.int64)
        return TrialRecord(trial.first.trial_id, trial.first.condition, trial.first.horizon, batch, stamps, status, reason)


def _fitting(layout: dict[str, slice], dim: int) -> dict[str, slice]:
    """The layout when it fits a vector of size ``dim``, else none (a sample must not carry a wrong layout)."""
    return layout if all(s.stop <= dim for s in layout.values()) else {}


def _ranges(values: list[int]) -> str:
    out, start = [], values[0]
    for prev, cur in zip(values, values[1:] + [None]):
        if cur != prev + 1:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return "[" + ", ".join(out) + "]"


def unique_path(folder: Path, record: TrialRecord) -> Path:
    """``trial_<id>.mcap``, or ``trial_<id>_<n>.mcap`` when that trial id was written before
    (a re-run, or late steps): an earlier file is never overwritten."""
    stem = f"trial_{record.trial_id:010d}"
    path, n = folder / f"{stem}{SUFFIX}", 1
    while path.exists():
        path, n = folder / f"{stem}_{n}{SUFFIX}", n + 1
    return path


def create_recorder(node_name: str = "recorder", **node_kwargs):
    """The recorder as an rclpy Node (parameters declared with descriptions)."""
    from action_msgs.msg import GoalStatus, GoalStatusArray
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.clock import Clock, ClockType
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from gps_ros.msg import Sample, TrialStep
    from gps_ros.ros.conversions import sample_to_msg

    class RecorderNode(Node):
        def __init__(self) -> None:
            super().__init__(node_name, **node_kwargs)
            param = self._param
            self.output_dir = Path(param("output_dir", "runs/samples", "folder the trial MCAP files are written to"))
            step_timeout = param("step_timeout", 5.0, "seconds without a step after which an open trial is written as aborted")
            abort_grace = param("abort_grace", 0.5, "seconds to wait for late steps after the controller reports an abort")
            self.record_steps = param("record_steps", True, "also store every TrialStep message in the trial file")
            depth = param("queue_depth", 1000, "TrialStep subscription queue depth (steps may arrive in bursts)")
            state_layout = param("state_layout", "", "named state slices stored with samples: 'name:size,name:size' ('' = none)")
            obs_layout = param("observation_layout", "", "named observation slices: 'name:size,name:size' ('' = none)")
            self.assembler = TrialAssembler(step_timeout, abort_grace, parse_layout("state_layout", state_layout),
                                            parse_layout("observation_layout", obs_layout))
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.unwritten: list[tuple[TrialRecord, list]] = []
            self.steps_received = 0
            self.sample_pub = self.create_publisher(Sample, RECORDED_SAMPLES, 100)
            self.create_subscription(TrialStep, TRIAL_STEPS, self._on_step,
                                     QoSProfile(depth=int(depth), reliability=ReliabilityPolicy.RELIABLE))
            self.create_subscription(GoalStatusArray, RUN_TRIAL + "/_action/status", self._on_goal_status, 10)
            self._seen_goals: set[bytes] = set()
            # timeouts run on the steady clock: under use_sim_time a lock-step sim stops the
            # clock exactly when a trial breaks off, and the trial must still be written
            self._steady = Clock(clock_type=ClockType.STEADY_TIME)
            self.create_timer(min(0.1, abort_grace / 2), self._on_timer, clock=self._steady)
            self.get_logger().info(f"recording trials to {self.output_dir.resolve()}")

        def _param(self, name: str, default, description: str):
            return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

        def _now(self) -> int:
            return self._steady.now().nanoseconds

        def _on_step(self, msg) -> None:
            self.steps_received += 1
            try:
                finished = self.assembler.add(msg, self._now())
            except ValueError as err:
                self.get_logger().error(f"dropped a TrialStep: {err}")
                return
            self._store(finished)

        def _on_goal_status(self, msg) -> None:
            ended = {GoalStatus.STATUS_ABORTED: "controller aborted the trial",
                     GoalStatus.STATUS_CANCELED: "trial cancelled"}
            for status in msg.status_list:
                key = bytes(status.goal_info.goal_id.uuid)
                if status.status in ended and key not in self._seen_goals:
                    self._seen_goals.add(key)
                    self.assembler.report_abort(ended[status.status], self._now())

        def _on_timer(self) -> None:
            self._store(self.assembler.expire(self._now()))

        def _store(self, finished: list) -> None:
            pending, self.unwritten = self.unwritten + finished, []
            for record, messages in pending:
                self._write(record, messages)

        def _write(self, record: TrialRecord, messages: list) -> None:
            path = unique_path(self.output_dir, record)
            try:
                write_trial(path, record, messages if self.record_steps else (),
                            self.resolve_topic_name(RECORDED_SAMPLES), self.resolve_topic_name(TRIAL_STEPS))
            except OSError as err:
                # kept in memory and retried on the next event: a full disk must not lose the trial
                self.get_logger().error(f"could not write trial {record.trial_id} to {path}: {err}; will retry",
                                        throttle_duration_sec=10.0)
                self.unwritten.append((record, messages))
                return
            line = f"trial {record.trial_id}: {record.status} ({record.sample.T}/{record.horizon} steps) -> {path.name}"
            if record.status == TRIAL_COMPLETE:
                self.get_logger().info(line)
            else:
                self.get_logger().warning(f"{line}: {record.abort_reason}")
            if self.context.ok():
                self.sample_pub.publish(sample_to_msg(record))

        def shutdown(self) -> None:
            """Write every open trial (aborted); report those that could not be written."""
            self._store(self.assembler.flush("recorder shut down before the trial ended"))
            for record, _ in self.unwritten:
                self.get_logger().error(f"trial {record.trial_id} could not be written to {self.output_dir} and is lost")

    return RecorderNode()


def parse_layout(name: str, text: str) -> dict[str, slice]:
    """'joint_angles:7,joint_velocities:7' -> contiguous named slices ('' -> none)."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, size = item.partition(":")
        if not key or not size.isdigit():
            raise ValueError(f"{name}: expected 'name:size,name:size' with integer sizes, got {text!r}")
        pairs.append((key, int(size)))
    return slices_from_layout(pairs)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    rclpy = require_ros("rclpy", "the recorder node")
    from rclpy.signals import SignalHandlerOptions

    # Ctrl-C arrives as KeyboardInterrupt with the context still valid, so the open trials
    # can be written and their samples published before shutting down. SIGINT's handler is set
    # here too: a process started from a background job inherits SIGINT ignored, and Python then
    # installs none of its own (seen: the recorder of a test run by `cmd &` never stopped).
    rclpy.init(args=argv if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    node = create_recorder()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        # steps already delivered but not yet taken belong to the open trials
        seen, quiet = node.steps_received, 0
        while quiet < 2:
            rclpy.spin_once(node, timeout_sec=0.02)
            quiet, seen = (quiet + 1, seen) if node.steps_received == seen else (0, node.steps_received)
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


__all__ = ["TrialAssembler", "create_recorder", "main", "parse_layout", "unique_path"]
