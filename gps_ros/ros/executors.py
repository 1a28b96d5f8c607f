"""A multi-threaded rclpy executor that does not starve its own worker threads.

rclpy 9.1's MultiThreadedExecutor yields a callback that is queued in its thread pool but not
started yet again on the next spin, at once (ros2/rclpy#1452, fixed upstream later): the spin
thread re-submits it in a tight loop that holds the GIL, so the workers barely run. Measured
here: while the controller's trial loop occupied one worker, each JointState callback waited
~60 ms for a worker and the controller burnt a whole core (a 100-step lock-step trial took
6-16 s instead of a fraction of a second). This executor submits each callback once and,
when the spin yields one that is still queued, waits (without the GIL) until a worker
starts it.
"""

from __future__ import annotations

import threading

from gps_ros.ros import require_ros

require_ros("rclpy", "gps_ros.ros.executors")
from rclpy.executors import (  # noqa: E402
    ConditionReachedException, ExternalShutdownException, MultiThreadedExecutor, ShutdownException, TimeoutException,
)

# Longest wait for a queued callback to start before the spin looks at the graph again.
QUEUED_WAIT_S = 0.01


class ThreadPoolExecutor(MultiThreadedExecutor):
    """MultiThreadedExecutor(num_threads) without the re-submission busy loop (see the module)."""

    def __init__(self, num_threads: int | None = None, **kwargs) -> None:
        super().__init__(num_threads, **kwargs)
        self._queued: dict[object, threading.Event] = {}
        self._queued_lock = threading.Lock()

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        with self._queued_lock:
            started = self._queued.get(handler)
            if started is None:
                started = self._queued[handler] = threading.Event()
                self._executor.submit(self._run, handler, started)
                self._futures.append(handler)
        started.wait(QUEUED_WAIT_S)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise any exceptions

    def _run(self, handler, started: threading.Event) -> None:
        with self._queued_lock:
            self._queued.pop(handler, None)
        started.set()
        handler()
