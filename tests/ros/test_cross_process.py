"""A gps_ros message crosses between two processes over real DDS on localhost."""

import subprocess
import sys
import textwrap
import time

import numpy as np

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import rclpy
    from gps_ros.msg import TrialStep
    rclpy.init()
    node = rclpy.create_node("cross_process_publisher")
    pub = node.create_publisher(TrialStep, "test/trial_step", 10)
    msg = TrialStep(trial_id=77, condition=2, step=5, horizon=100)
    msg.state = np.arange(26, dtype=float) * 0.5
    msg.action = np.array([1.0, -2.0, 3.5])
    msg.noise = np.array([0.1, 0.2, 0.3])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    for _ in range(200):
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
        if sys.stdin.closed:
            break
    node.destroy_node()
    rclpy.shutdown()
    """
)


def test_trial_step_published_in_a_subprocess_arrives_intact():
    import rclpy
    from gps_ros.msg import TrialStep

    rclpy.init()
    node = rclpy.create_node("cross_process_subscriber")
    received = []
    node.create_subscription(TrialStep, "test/trial_step", received.append, 10)
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert received, f"no message arrived; publisher stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        msg = received[0]
        assert (msg.trial_id, msg.condition, msg.step, msg.horizon) == (77, 2, 5, 100)
        np.testing.assert_array_equal(msg.state, np.arange(26) * 0.5)
        np.testing.assert_array_equal(msg.action, [1.0, -2.0, 3.5])
    finally:
        proc.kill()
        proc.wait()
        node.destroy_node()
        rclpy.shutdown()
