"""learner node: runs the configured GPS algorithm over ROS, with checkpoints and resume.

The trainer loop of gps_ros.training.trainer (the one `gps-ros train` runs in-process)
runs in a worker thread with a RosAgent: trials on the controller node, scene resets by
the sim's ResetScene (reset:=sim) or by the operator (reset:=manual, the default when the
node does not run on sim time, i.e. on hardware: a ResetRequest and an acknowledgement,
or Enter with terminal:=true; no trial starts before it). The main thread spins the node
with a multi-threaded executor (gps_ros.ros.executors), so the agent's clients and the AcknowledgeReset service are
served while the worker waits. Progress goes to the terminal and to LEARNER_STATUS
(gps_ros/LearnerStatus); checkpoint.pkl, metrics.json and learning_curve.png are
rewritten in output_dir after every iteration.

Resume (resume:=true, or resume:=DIR): the state of DIR/checkpoint.pkl (true: output_dir),
the recorded trials in samples_dir re-used by the rule of gps_ros.training.trainer, trial
ids continued after the largest recorded one.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

from gps_ros.ros import require_ros
from gps_ros.ros.interfaces import LEARNER_STATUS

_DOCS = {
    "config": "training config YAML (config/train/*.yaml); empty: config/train/traj_opt_reacher_ros.yaml",
    "resume": "false | true (resume from output_dir/checkpoint.pkl) | a checkpoint folder",
    "output_dir": "folder for checkpoint.pkl, metrics.json and learning_curve.png; empty: the config's output_dir",
    "samples_dir": "the recorder's output_dir: its trial files are re-used and counted on resume",
}
DEFAULT_CONFIG = "train/traj_opt_reacher_ros.yaml"


class _SpunElsewhere:
    """What RosAgent spins while it waits: nothing, because the node's MultiThreadedExecutor
    runs in the main thread and completes the agent's futures there."""

    @staticmethod
    def spin_once(timeout_sec: float = 0.0) -> None:
        time.sleep(timeout_sec)


def status_message(progress, stamp):
    """A gps_ros/LearnerStatus from a gps_ros.training.progress.Progress."""
    from gps_ros.msg import LearnerStatus

    msg = LearnerStatus(**{f.name: getattr(progress, f.name) for f in dataclasses.fields(progress)})
    msg.header.stamp = stamp
    return msg


class Learner:
    """Declares the parameters, prepares the trainer (fresh or resumed) and runs it."""

    def __init__(self, node) -> None:
        from rcl_interfaces.msg import ParameterDescriptor
        from rclpy.clock import Clock, ClockType

        from gps_ros.msg import LearnerStatus
        from gps_ros.resources import config_path
        from gps_ros.ros.ros_agent import RosAgent, agent_config_for_task
        from gps_ros.sim import load_task
        from gps_ros.train import resume_dir
        from gps_ros.training.config import load_config
        from gps_ros.training.trainer import Trainer, interrupted_samples, new_state, resume_state

        self.node = node
        param = {name: node.declare_parameter(name, default, ParameterDescriptor(description=_DOCS[name])).value
                 for name, default in (("config", ""), ("output_dir", ""), ("samples_dir", "runs/samples"))}
        resume = node.declare_parameter("resume", False, ParameterDescriptor(
            description=_DOCS["resume"], dynamic_typing=True)).value
        config = load_config(param["config"] or config_path(DEFAULT_CONFIG))
        if param["output_dir"]:
            config = dataclasses.replace(config, output_dir=param["output_dir"])
        self.config = config
        task = load_task(config.task)
        agent_config = agent_config_for_task(node, task)
        checkpoint_dir = resume_dir(resume, config.output_dir)
        reuse, next_trial_id = {}, 1
        if checkpoint_dir is None:
            state = new_state(config, task)
        else:
            state = resume_state(config, checkpoint_dir)
            records = self._recorded(param["samples_dir"], task)
            reuse, found, next_trial_id = interrupted_samples(records, state.next_trial_id, config.conditions,
                                                              config.samples_per_condition)
            state.samples_total += found
            node.get_logger().info(
                f"resuming after iteration {state.iteration} from {checkpoint_dir}: {found} trials recorded since, "
                f"{sum(b.N for b in reuse.values())} re-used; next trial id {next_trial_id}")
        agent_config = dataclasses.replace(agent_config, first_trial_id=max(next_trial_id, state.next_trial_id))
        self.agent = RosAgent(node, agent_config, executor=_SpunElsewhere())
        self.status_pub = node.create_publisher(LearnerStatus, LEARNER_STATUS, 10)
        self.trainer = Trainer(config, task, self.agent, state, config.output_dir, self.publish,
                               lambda line: print(line, flush=True), reuse)
        self.exit_code = 0
        self.latest = None
        # re-published once a second (steady clock: sim time stands still between trials), so
        # late subscribers see it and a wait for the operator shows
        node.create_timer(1.0, self._republish, clock=Clock(clock_type=ClockType.STEADY_TIME))
        node.get_logger().info(f"{config.algorithm} on {task.name}: {config.iterations} iterations, "
                               f"{self.trainer.trials_per_iteration} trials each, reset: {agent_config.reset}; writing to "
                               f"{config.output_dir}")

    def _recorded(self, samples_dir: str, task) -> list:
        """The recorded TrialRecords, their samples labelled with the task's state layout (the
        recorder stores the layout only when its state_layout parameter is set)."""
        from pathlib import Path

        from gps_ros.ros.mcap_io import read_samples

        if not Path(samples_dir).is_dir():
            self.node.get_logger().warning(f"samples_dir {samples_dir} does not exist: no recorded trials to re-use")
            return []
        records = []
        for _, record in read_samples(samples_dir):
            if not record.sample.state_slices and record.sample.dX == task.dX:
                sample = dataclasses.replace(record.sample, state_slices=dict(task.state_slices),
                                             obs_slices=dict(task.obs_slices))
                record = dataclasses.replace(record, sample=sample)
            records.append(record)
        return records

    def publish(self, progress) -> None:
        # while the agent waits for the operator, the status says so
        self.latest = progress
        if self.agent._pending_request is not None:
            progress = dataclasses.replace(progress, phase="waiting_for_reset")
        self.status_pub.publish(status_message(progress, self.node.get_clock().now().to_msg()))

    def _republish(self) -> None:
        if self.latest is not None:
            self.publish(self.latest)

    def train(self) -> None:
        try:
            self.trainer.run()
        except Exception as err:
            self.node.get_logger().error(f"training stopped: {type(err).__name__}: {err}")
            self.exit_code = 1


def main(argv: list[str] | None = None) -> int:
    rclpy = require_ros("rclpy", "the learner node")
    from rclpy.executors import ExternalShutdownException

    from gps_ros.ros.executors import ThreadPoolExecutor

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("learner")
    try:
        learner = Learner(node)
    except ValueError as err:
        node.get_logger().error(str(err))
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    executor = ThreadPoolExecutor()
    executor.add_node(node)
    worker = threading.Thread(target=learner.train, name="trainer", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            executor.spin_once(timeout_sec=0.1)
        # a moment for the final status to reach late subscribers
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        # a stop by the operator is a clean exit: every completed iteration is checkpointed
        node.get_logger().info("interrupted; the last checkpoint is in " + learner.config.output_dir)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return learner.exit_code
