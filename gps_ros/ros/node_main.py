"""The main() of a node that only spins: init, build the node, spin until Ctrl-C or an
external shutdown, then destroy the node and shut rclpy down."""

from __future__ import annotations

import sys
from collections.abc import Callable

from gps_ros.ros import require_ros


def spin_node_main(make_node: Callable[[], object], argv: list[str] | None = None, threads: int | None = None) -> int:
    """Run the node built by ``make_node`` (after rclpy.init, args ``argv`` or sys.argv);
    threads: spin on a (gps_ros.ros.executors) ThreadPoolExecutor with that many threads (None: rclpy.spin).
    Returns the exit status 0, also after Ctrl-C while the node is being built."""
    rclpy = require_ros("rclpy", "a gps_ros node")
    from rclpy.executors import ExternalShutdownException

    from gps_ros.ros.executors import ThreadPoolExecutor

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = None
    try:
        # Built inside the try: a launcher's SIGINT can arrive while the node is still starting
        # (its name is already on the graph), which is a clean stop, not a crash.
        node = make_node()
        if threads is None:
            rclpy.spin(node)
        else:
            executor = ThreadPoolExecutor(num_threads=threads)
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
