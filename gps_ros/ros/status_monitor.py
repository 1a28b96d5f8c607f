"""status_monitor node: prints the learner's progress (gps_ros/LearnerStatus) as one line per update."""

from __future__ import annotations

import math
import sys

from gps_ros.ros import require_ros
from gps_ros.ros.interfaces import LEARNER_STATUS


def format_status(msg) -> str:
    """One terminal line: iteration, phase, trials, samples, cost, success and ETA."""
    parts = [
        f"[{msg.algorithm or '?'}] iter {msg.iteration + 1}/{msg.max_iterations}",
        f"{msg.phase:<17}",
        f"trials {msg.trials_done}/{msg.trials_per_iteration}",
        f"samples {msg.samples_total}",
    ]
    if not math.isnan(msg.mean_cost):
        parts.append(f"cost {msg.mean_cost:.4g}")
    if not math.isnan(msg.success_rate):
        parts.append(f"success {100 * msg.success_rate:.0f}%")
    if not math.isnan(msg.seconds_remaining):
        parts.append(f"ETA {msg.seconds_remaining / 60:.1f} min")
    if msg.message:
        parts.append(msg.message)
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    rclpy = require_ros("rclpy", "the status_monitor node")
    from rcl_interfaces.msg import ParameterDescriptor

    from gps_ros.msg import LearnerStatus

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("status_monitor")
    node.declare_parameter(
        "topic", LEARNER_STATUS, ParameterDescriptor(description="LearnerStatus topic to print (relative to the namespace)")
    )
    topic = node.get_parameter("topic").value
    node.create_subscription(LearnerStatus, topic, lambda m: print(format_status(m), flush=True), 10)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
