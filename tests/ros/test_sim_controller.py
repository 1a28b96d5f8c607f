"""Controller node + sim node in their own processes over real DDS on localhost.

The test process stands where the learner stands: it resets the scene (ResetScene) and
asks for trials (RunTrial). Reference: the in-process MujocoAgent on the same task,
policy, noise and condition.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.noise import draw_noise
from gps_ros.resources import config_path
from gps_ros.ros.conversions import stamp_to_ns
from gps_ros.sim import load_task

TASK = "reacher3"
MAX_HORIZON = 4000
# joint1 (unlimited in the model) gets a position limit the limit test can reach.
Q1_LIMIT = 1.5
WAIT = 60.0


def start_node(log_dir, name, *params, files=(), namespace="/"):
    """The node in its own process; its output goes to <log_dir>/<name><namespace>.log."""
    args = [sys.executable, "-m", "gps_ros.cli", "node", name, "--ros-args", "-r", f"__ns:={namespace}"]
    for f in files:
        args += ["--params-file", str(config_path("nodes", f))]
    for p in params:
        args += ["-p", p]
    with open(log_dir / f"{name}{namespace.replace('/', '_')}.log", "w") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True)


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Learner:
    """The test's node: ResetScene and RunTrial clients, latest JointState."""

    def __init__(self, rclpy, namespace="/"):
        from rclpy.action import ActionClient
        from sensor_msgs.msg import JointState

        from gps_ros.action import RunTrial
        from gps_ros.srv import ResetScene

        self.rclpy = rclpy
        self.node = rclpy.create_node("test_learner", namespace=namespace)
        self.reset_client = self.node.create_client(ResetScene, "reset_scene")
        self.trial_client = ActionClient(self.node, RunTrial, "run_trial")
        self.joint_states = []
        self.start_stamp = None
        self.node.create_subscription(JointState, "joint_states", self.joint_states.append, 100)

    def wait(self, future, what):
        self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=WAIT)
        assert future.done(), f"no answer to {what} within {WAIT} s"
        return future.result()

    def handshake(self):
        """One answered reset and one answered (refused) goal before the tests talk to the nodes.

        A server that answers before it has matched the client's reply reader loses the answer
        (rmw_fastrtps waits 100 ms for the match; discovery on a loaded machine takes longer).
        Both exchanges are harmless to repeat: a reset to condition 0 and a goal refused for its
        horizon, before anything moves. Once answered, the reply endpoints stay matched."""
        from gps_ros.action import RunTrial
        from gps_ros.srv import ResetScene

        request = ResetScene.Request(mode=ResetScene.Request.MODE_CONDITION, condition=0)
        self._until_answered(lambda: self.reset_client.call_async(request), "reset_scene")
        goal = RunTrial.Goal(trial_id=0, horizon=0)
        handle = self._until_answered(lambda: self.trial_client.send_goal_async(goal), "a refused goal")
        self._until_answered(handle.get_result_async, "the refused goal's result")

    def _until_answered(self, ask, what, attempt_s=5.0):
        end = time.monotonic() + WAIT
        while True:
            future = ask()
            self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=attempt_s)
            if future.done():
                return future.result()
            assert time.monotonic() < end, f"no answer to {what} within {WAIT} s"

    def reset(self, condition):
        from gps_ros.srv import ResetScene

        return self._reset(ResetScene.Request(mode=ResetScene.Request.MODE_CONDITION, condition=condition))

    def reset_random(self, seed):
        from gps_ros.srv import ResetScene

        return self._reset(ResetScene.Request(mode=ResetScene.Request.MODE_RANDOM, seed=seed))

    def _reset(self, request):
        """The target position; the next goal starts from the reset scene's stamp (as RosAgent does)."""
        resp = self.wait(self.reset_client.call_async(request), "reset_scene")
        assert resp.success, resp.message
        self.start_stamp = resp.stamp
        return np.array(resp.target_position)

    def set_controller_parameter(self, name, values):
        from rclpy.parameter import Parameter
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, "controller")
        assert client.wait_for_services(WAIT)
        param = Parameter(name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in values])
        results = self._until_answered(lambda: client.set_parameters([param]), "set_parameters").results
        assert results[0].successful, results[0].reason

    def run(self, goal, on_feedback=None, cancel_at_step=None):
        """(action status, result sample); cancels once feedback reports ``cancel_at_step`` steps done."""
        steps = []
        if self.start_stamp is not None:
            goal.start_stamp, self.start_stamp = self.start_stamp, None

        def feedback(msg):
            steps.append(msg.feedback.step)
            if on_feedback is not None:
                on_feedback(msg)

        handle = self.wait(self.trial_client.send_goal_async(goal, feedback_callback=feedback), "the goal")
        assert handle.accepted
        result = handle.get_result_async()
        if cancel_at_step is not None:
            end = time.monotonic() + WAIT
            while not (steps and steps[-1] >= cancel_at_step) and not result.done() and time.monotonic() < end:
                self.rclpy.spin_once(self.node, timeout_sec=0.01)
            handle.cancel_goal_async()
        response = self.wait(result, "the result")
        return response.status, response.result.sample

    def wait_for_graph(self):
        """Until the controller's and the sim's endpoints are in the graph (both directions), plus
        a moment for the endpoints to match."""
        node, end = self.node, time.monotonic() + WAIT
        while time.monotonic() < end and not (
            node.count_subscribers("joint_states") >= 2 and node.count_publishers("effort_controller/commands") >= 1
            and node.count_subscribers("effort_controller/commands") >= 1
        ):
            self.rclpy.spin_once(node, timeout_sec=0.05)
        self.latest_state(settle=0.5)

    def spin_until_sim_time(self, stamp_ns, guard_s=300.0):
        """Spin until a JointState stamped at or after ``stamp_ns`` arrives (guard: never hang)."""
        end = time.monotonic() + guard_s
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
            stamp = self.joint_states[-1].header.stamp if self.joint_states else None
            if stamp is not None and stamp_to_ns(stamp) >= stamp_ns:
                return
        raise AssertionError(f"no joint state reached sim time {stamp_ns} ns")

    def latest_state(self, settle=0.3):
        """(stamp ns, positions) of the newest JointState after spinning ``settle`` s."""
        end = time.monotonic() + settle
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.02)
        msg = self.joint_states[-1]
        return stamp_to_ns(msg.header.stamp), np.array(msg.position)


@pytest.fixture(scope="module")
def ros():
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.shutdown()


@pytest.fixture(scope="module")
def graph(ros, tmp_path_factory):
    task = load_task(TASK)
    logs = tmp_path_factory.mktemp("lock_step_nodes")
    sim = start_node(logs, "sim", f"task:={TASK}", "lock_step:=true", "camera_enabled:=true", files=("sim.yaml",))
    controller = start_node(
        logs, "controller", f"task:={TASK}", f"max_horizon:={MAX_HORIZON}", "state_timeout:=5.0", "camera_enabled:=true",
        f"position_limits_low:=[{-Q1_LIMIT}, -2.9, -2.9]", f"position_limits_high:=[{Q1_LIMIT}, 2.9, 2.9]",
        files=("controller.yaml", "controller_sim.yaml"),
    )
    yield from serve(ros, task, sim, controller, "/")


def serve(rclpy, task, sim, controller, namespace):
    learner = Learner(rclpy, namespace)
    try:
        ready = learner.trial_client.wait_for_server(timeout_sec=WAIT) and learner.reset_client.wait_for_service(WAIT)
        assert ready, f"nodes did not come up; sim: {sim.poll()}, controller: {controller.poll()}"
        learner.wait_for_graph()
        learner.handshake()
        yield task, learner, sim, controller
    finally:
        learner.node.destroy_node()
        for proc in (controller, sim):
            stop(proc)


@pytest.fixture(scope="module")
def free_running(ros, tmp_path_factory):
    """Sim and controller free-running on the wall clock, like hardware (own namespace)."""
    task = load_task(TASK)
    logs = tmp_path_factory.mktemp("free_running_nodes")
    sim = start_node(logs, "sim", f"task:={TASK}", "lock_step:=false", files=("sim.yaml",), namespace="/free")
    controller = start_node(logs, "controller", f"task:={TASK}", "state_timeout:=2.0", files=("controller.yaml",),
                            namespace="/free")
    yield from serve(ros, task, sim, controller, "/free")


def lg_goal(task, trial_id, K, k, cov=None, seed=0, smoothing=0.0, condition=0, dt=None, sensors=None):
    from gps_ros.action import RunTrial
    from gps_ros.ros.conversions import LinearGaussianCommand, linear_gaussian_to_msg

    goal = RunTrial.Goal(trial_id=trial_id, condition=condition, horizon=K.shape[0], dt=task.dt if dt is None else dt,
                         policy_type=RunTrial.Goal.POLICY_LINEAR_GAUSSIAN)
    goal.state_sensors = list(task.state_slices) if sensors is None else sensors
    goal.observation_sensors = list(task.config.obs)
    goal.linear_gaussian = linear_gaussian_to_msg(LinearGaussianCommand(K, k, cov, seed, smoothing))
    return goal


def pd_policy(task, T, kp=2.0, kd=0.3, rng=None, noise_scale=0.0):
    """A PD toward q = 0 with optional random perturbations: K [T, dU, dX], k [T, dU]."""
    dU, dX = task.dU, task.dX
    K = np.zeros((T, dU, dX))
    K[:, :, task.state_slices["joint_angles"]] = -kp * np.eye(dU)
    K[:, :, task.state_slices["joint_velocities"]] = -kd * np.eye(dU)
    k = np.zeros((T, dU))
    if rng is not None:
        K += noise_scale * rng.standard_normal(K.shape)
        k += 0.1 * rng.standard_normal(k.shape)
    return K, k


def test_state_estimator_matches_the_agent_state():
    from gps_ros.agents.mujoco_agent import MujocoAgent
    from gps_ros.ros.state_estimator import StateEstimator

    task = load_task(TASK)
    agent, estimator = MujocoAgent(task), StateEstimator(task)
    rng = np.random.default_rng(3)
    for condition in (0, 5):
        cond = agent.reset(condition)
        agent.data.qpos[:] = rng.uniform(-1.5, 1.5, 3)
        agent.data.qvel[:] = rng.normal(size=3)
        estimator.set_target(cond.target)
        np.testing.assert_array_equal(estimator.state(agent.data.qpos.copy(), agent.data.qvel.copy()), agent.state())


def test_lock_step_trial_reproduces_the_in_process_agent(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.agents.mujoco_agent import MujocoAgent
    from gps_ros.msg import Sample

    task, learner, _, _ = graph
    rng = np.random.default_rng(11)
    T, condition, seed, smoothing = task.T, 3, 1234, 1.0
    K, k = pd_policy(task, T, rng=rng, noise_scale=0.05)
    cov = np.broadcast_to(0.02 * np.eye(task.dU), (T, task.dU, task.dU)).copy()
    target = learner.reset(condition)
    np.testing.assert_array_equal(target, task.conditions[condition].target)

    status, sample = learner.run(lg_goal(task, 42, K, k, cov, seed, smoothing, condition))

    assert status == GoalStatus.STATUS_SUCCEEDED, sample.abort_reason
    assert (sample.trial_id, sample.condition, sample.status) == (42, condition, Sample.STATUS_COMPLETE)
    assert sample.steps_completed == T
    noise = draw_noise(np.random.default_rng(seed), 1, T, task.dU, smoothing, renorm=True)[0]
    ref = MujocoAgent(task).sample(LinearGaussianPolicy(K, k, cov), condition=condition, noise=noise)
    assert np.abs(ref.X[0, :, 0]).max() < Q1_LIMIT  # the reference never meets the test's joint limit
    X = np.array(sample.states).reshape(T, task.dX)
    U = np.array(sample.actions).reshape(T, task.dU)
    # Same model, same MuJoCo calls in the same order, float64 all the way: exact.
    np.testing.assert_allclose(X, ref.X[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(U, ref.U[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.array(sample.noise).reshape(T, task.dU), noise)
    # sim time: step t measured at t x dt
    stamps = np.array([stamp_to_ns(s) for s in sample.stamps])
    np.testing.assert_array_equal(np.diff(stamps), round(task.dt * 1e9))


def test_reset_stamps_are_newer_than_every_state_before_the_reset(graph):
    task, learner, _, _ = graph
    learner.reset(1)
    before, _ = learner.latest_state()
    learner.reset(2)
    stamp = stamp_to_ns(learner.start_stamp)
    learner.start_stamp = None
    after, q = learner.latest_state()
    # A pre-reset state still in flight is told apart from the reset scene by its stamp alone.
    assert stamp > before
    assert after == stamp
    np.testing.assert_array_equal(q, task.conditions[2].qpos)


def test_folded_noise_trial_reproduces_the_agent(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.agents.mujoco_agent import MujocoAgent

    task, learner, _, _ = graph
    T = task.T
    K, k = pd_policy(task, T, rng=np.random.default_rng(5), noise_scale=0.02)
    learner.reset(6)
    status, sample = learner.run(lg_goal(task, 43, K, k, condition=6))
    assert status == GoalStatus.STATUS_SUCCEEDED, sample.abort_reason
    cov = np.broadcast_to(np.eye(task.dU), (T, task.dU, task.dU))
    ref = MujocoAgent(task).sample(LinearGaussianPolicy(K, k, cov), condition=6, noise=np.zeros((T, task.dU)))
    np.testing.assert_allclose(np.array(sample.states).reshape(T, task.dX), ref.X[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(sample.noise, np.zeros(T * task.dU))


def _nan_gains(task):
    """A goal whose gains K[4, 1, 2] is NaN (set in the message: the sender's conversion refuses NaN)."""
    goal = lg_goal(task, 1, *pd_policy(task, 10))
    goal.linear_gaussian.gains[(4 * task.dU + 1) * task.dX + 2] = float("nan")
    return goal


BAD_GOALS = {
    "nan": ("invalid goal: linear_gaussian.gains: expected finite values, got nan at index (4, 1, 2)", _nan_gains),
    "dim_x": ("invalid goal: linear_gaussian.dim_x: expected 12", lambda task: lg_goal(
        task, 2, np.zeros((10, task.dU, task.dX - 2)), np.zeros((10, task.dU)))),
    "dim_u": ("invalid goal: linear_gaussian.dim_u: expected 3", lambda task: lg_goal(
        task, 3, np.zeros((10, 2, task.dX)), np.zeros((10, 2)))),
    "too_long": (f"invalid goal: horizon: expected 1 <= T <= max_horizon = {MAX_HORIZON}, got {MAX_HORIZON + 1}",
                 lambda task: lg_goal(task, 4, *pd_policy(task, MAX_HORIZON + 1))),
    "dt": ("invalid goal: dt: expected the controller's control period 0.05 s, got 0.01",
           lambda task: lg_goal(task, 5, *pd_policy(task, 10), dt=0.01)),
    "sensor": ("invalid goal: state_sensors[1]: expected one of", lambda task: lg_goal(
        task, 6, *pd_policy(task, 10), sensors=["joint_angles", "wrist_camera"])),
    "policy_type": ("invalid goal: policy_type: expected 0 (POLICY_LINEAR_GAUSSIAN) or 1 (POLICY_NEURAL), got 7",
                    lambda task: _with(lg_goal(task, 7, *pd_policy(task, 10)), policy_type=7)),
}


def _with(goal, **fields):
    for key, value in fields.items():
        setattr(goal, key, value)
    return goal


@pytest.mark.parametrize("case", sorted(BAD_GOALS))
def test_bad_goal_is_refused_before_anything_moves(graph, case):
    from action_msgs.msg import GoalStatus
    from gps_ros.msg import Sample

    task, learner, _, _ = graph
    reason, make = BAD_GOALS[case]
    learner.reset(2)
    stamp, q = learner.latest_state()
    status, sample = learner.run(make(task))
    assert status == GoalStatus.STATUS_ABORTED
    assert sample.status == Sample.STATUS_ABORTED and sample.steps_completed == 0
    assert sample.abort_reason.startswith(reason), sample.abort_reason
    # The lock-step sim advances only on a command: same sim time, same pose.
    stamp_after, q_after = learner.latest_state()
    assert stamp_after == stamp
    np.testing.assert_array_equal(q_after, q)


def test_joint_beyond_its_limit_aborts_the_trial(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.msg import Sample

    task, learner, _, _ = graph
    T = 200
    K = np.zeros((T, task.dU, task.dX))
    k = np.tile([0.5, 0.0, 0.0], (T, 1))  # full torque on joint1 until it passes the limit
    learner.reset(0)
    status, sample = learner.run(lg_goal(task, 50, K, k))
    assert status == GoalStatus.STATUS_ABORTED
    assert sample.status == Sample.STATUS_ABORTED
    assert sample.abort_reason.startswith(f"joint limit: joint1 position"), sample.abort_reason
    assert f"outside [{-Q1_LIMIT:g}, {Q1_LIMIT:g}]" in sample.abort_reason
    assert 0 < sample.steps_completed < T
    X = np.array(sample.states).reshape(sample.steps_completed, task.dX)
    assert np.all(np.abs(X[:, 0]) <= Q1_LIMIT)  # only the states before the violation are recorded
    # Lock-step: nothing is commanded after the abort, so the sim stays at the violating state, one
    # control period after the last recorded one (a hold command would step it once more).
    stamp, _ = learner.latest_state(settle=1.0)
    assert stamp == stamp_to_ns(sample.stamps[-1]) + round(task.dt * 1e9)


def test_stale_joint_states_end_the_trial(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.msg import Sample

    task, learner, sim, _ = graph
    T = MAX_HORIZON
    K, k = pd_policy(task, T)
    learner.reset(1)
    paused = []

    def pause_sim(feedback):
        if not paused and feedback.feedback.step >= 5:
            os.kill(sim.pid, signal.SIGSTOP)
            paused.append(feedback.feedback.step)

    try:
        status, sample = learner.run(lg_goal(task, 60, K, k, condition=1), on_feedback=pause_sim)
    finally:
        os.kill(sim.pid, signal.SIGCONT)
    assert paused, "the trial finished before the sim could be paused"
    assert status == GoalStatus.STATUS_ABORTED
    assert sample.status == Sample.STATUS_ABORTED
    reason = sample.abort_reason
    assert reason.startswith("watchdog: no new joint state within state_timeout = 5.0 s"), reason
    assert paused[0] <= sample.steps_completed < T


def test_cancel_ends_the_trial_with_the_reason(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.msg import Sample

    task, learner, _, _ = graph
    learner.reset(4)
    status, sample = learner.run(lg_goal(task, 70, *pd_policy(task, MAX_HORIZON), condition=4), cancel_at_step=5)
    assert status == GoalStatus.STATUS_CANCELED
    assert (sample.trial_id, sample.status, sample.abort_reason) == (70, Sample.STATUS_ABORTED, "cancelled")
    assert 5 <= sample.steps_completed < MAX_HORIZON


@pytest.mark.parametrize("via", ["goal", "parameter"])
def test_random_placement_target_from_the_goal_or_the_parameter(graph, via):
    from action_msgs.msg import GoalStatus
    from gps_ros.agents.mujoco_agent import MujocoAgent

    task, learner, _, _ = graph
    seed, T = 99, task.T
    expected = task.random_condition(np.random.default_rng(seed))
    K, k = pd_policy(task, T, rng=np.random.default_rng(8), noise_scale=0.02)
    goal = lg_goal(task, 80 if via == "goal" else 81, K, k, condition=0)
    if via == "goal":
        target = learner.reset_random(seed)
        goal.target_position = [float(v) for v in target]
        status, sample = learner.run(goal)
    else:
        learner.set_controller_parameter("target_position", expected.target)
        try:
            target = learner.reset_random(seed)
            status, sample = learner.run(goal)
        finally:
            learner.set_controller_parameter("target_position", [])
    np.testing.assert_array_equal(target, expected.target)
    assert not any(np.allclose(target, c.target) for c in task.conditions)
    assert status == GoalStatus.STATUS_SUCCEEDED, sample.abort_reason
    cov = np.broadcast_to(np.eye(task.dU), (T, task.dU, task.dU))
    ref = MujocoAgent(task).sample(LinearGaussianPolicy(K, k, cov), condition=expected, noise=np.zeros((T, task.dU)))
    X = np.array(sample.states).reshape(T, task.dX)
    np.testing.assert_allclose(X, ref.X[0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(X[:, task.state_slices["target_position"]], np.tile(target[:2], (T, 1)))


def test_goal_with_a_malformed_target_is_refused(graph):
    from gps_ros.msg import Sample

    task, learner, _, _ = graph
    goal = lg_goal(task, 82, *pd_policy(task, 5))
    goal.target_position = [0.1, float("nan"), 0.0]
    _, sample = learner.run(goal)
    assert sample.status == Sample.STATUS_ABORTED and sample.steps_completed == 0
    assert sample.abort_reason.startswith("invalid goal: target_position: expected finite values"), sample.abort_reason


def test_neural_policy_trial_reproduces_the_agent(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.action import RunTrial
    from gps_ros.agents.mujoco_agent import MujocoAgent
    from gps_ros.policies.gaussian_policy import GaussianPolicy
    from gps_ros.policies.networks import PolicyArchitecture
    from gps_ros.policies.normalization import Normalization
    from gps_ros.ros.conversions import NeuralCommand, neural_to_msg
    import torch

    task, learner, _, _ = graph
    T, rng = task.T, np.random.default_rng(21)
    arch = PolicyArchitecture(kind="mlp", dO=task.dO, dU=task.dU, hidden_sizes=(16, 16))
    # Power-of-two scales: obs_std = 1 / scale travels and is inverted back exactly.
    scale = 2.0 ** rng.integers(-2, 3, task.dO)
    policy = GaussianPolicy(arch, normalization=Normalization(0.1 * rng.standard_normal(task.dO), scale),
                            covariance=0.01 * np.eye(task.dU), device="cpu", seed=4)
    with torch.no_grad():  # small actions: the random network must not drive joint1 to its limit
        for tensor in list(policy.network.parameters())[-2:]:
            tensor.mul_(0.3)
    noise = rng.standard_normal((T, task.dU))
    params = {name: t.detach().numpy() for name, t in policy.network.state_dict().items()}
    cmd = NeuralCommand(arch.to_dict(), params, policy.normalization.shift, 1.0 / scale, policy.covariance, noise)
    goal = RunTrial.Goal(trial_id=90, condition=7, horizon=T, dt=task.dt, policy_type=RunTrial.Goal.POLICY_NEURAL,
                         state_sensors=list(task.state_slices), observation_sensors=list(task.config.obs))
    goal.neural = neural_to_msg(cmd)
    learner.reset(7)
    status, sample = learner.run(goal)
    assert status == GoalStatus.STATUS_SUCCEEDED, sample.abort_reason
    ref = MujocoAgent(task).sample(policy, condition=7, noise=noise)
    assert np.abs(ref.X[0, :, 0]).max() < Q1_LIMIT
    # Exact here (same float32 network, same CPU); the tolerance leaves room for torch choosing
    # other kernels in another process (float32 rounding); the float64 physics adds nothing.
    np.testing.assert_allclose(np.array(sample.states).reshape(T, task.dX), ref.X[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(sample.observations).reshape(T, task.dO), ref.obs[0], rtol=0, atol=1e-6)


def test_image_trial_reproduces_the_agent_images(graph):
    from action_msgs.msg import GoalStatus
    from gps_ros.agents.mujoco_agent import MujocoAgent
    from gps_ros.ros.conversions import image_from_msg

    task, learner, _, _ = graph
    T = task.T
    K, k = pd_policy(task, T, rng=np.random.default_rng(2), noise_scale=0.02)
    goal = lg_goal(task, 95, K, k, condition=2)
    goal.observation_sensors = [*task.config.obs, "image"]
    goal.record_images = True
    learner.reset(2)
    status, sample = learner.run(goal)
    assert status == GoalStatus.STATUS_SUCCEEDED, sample.abort_reason
    cov = np.broadcast_to(np.eye(task.dU), (T, task.dU, task.dU))
    agent = MujocoAgent(task)
    ref = agent.sample(LinearGaussianPolicy(K, k, cov), condition=2, noise=np.zeros((T, task.dU)), with_images=True)
    dO, slices = agent.obs_layout(with_images=True)
    assert sample.dim_obs == dO and {s.name: (s.offset, s.size) for s in sample.observation_layout} == {
        name: (sl.start, sl.stop - sl.start) for name, sl in slices.items()}
    images = np.stack([image_from_msg(m) for m in sample.images])
    assert images.std() > 0  # a real picture, not a blank buffer
    np.testing.assert_array_equal(images, ref.extras["image"][0])
    np.testing.assert_allclose(np.array(sample.observations).reshape(T, dO), ref.obs[0], rtol=0, atol=1e-9)


def test_free_running_trial_then_hold(free_running):
    from action_msgs.msg import GoalStatus

    task, learner, _, _ = free_running
    T = 10
    K = np.zeros((T, task.dU, task.dX))
    k = np.tile([0.3, 0.0, 0.0], (T, 1))  # constant torque: joint1 is still moving when the trial ends
    learner.reset(0)
    status, sample = learner.run(lg_goal(task, 100, K, k))
    assert status == GoalStatus.STATUS_SUCCEEDED, sample.abort_reason
    X = np.array(sample.states).reshape(T, task.dX)
    qd1 = X[:, task.state_slices["joint_velocities"]][:, 0]
    assert qd1[-1] > 0.1
    stamps = np.array([stamp_to_ns(s) for s in sample.stamps])
    # The latest state each step: a late one is used twice (hardware publishes far faster than the steps).
    assert np.all(np.diff(stamps) >= 0) and stamps[-1] > stamps[0]
    # Had the last command (0.3 N*m) been held, joint1 would keep accelerating; the hold PD stops it.
    # Wait 3 s of *simulated* time (stamps), however slowly a loaded machine runs the sim.
    learner.spin_until_sim_time(stamps[-1] + 3 * 10**9)
    assert abs(learner.joint_states[-1].velocity[0]) < 0.05


def test_free_running_watchdog(free_running):
    from action_msgs.msg import GoalStatus

    task, learner, sim, _ = free_running
    paused = []

    def pause_sim(feedback):
        if not paused and feedback.feedback.step >= 3:
            os.kill(sim.pid, signal.SIGSTOP)
            paused.append(feedback.feedback.step)

    try:
        status, sample = learner.run(lg_goal(task, 101, *pd_policy(task, 100)), on_feedback=pause_sim)
    finally:
        os.kill(sim.pid, signal.SIGCONT)
    assert status == GoalStatus.STATUS_ABORTED
    reason = sample.abort_reason
    assert reason.startswith("watchdog: no new joint state within state_timeout = 2.0 s"), reason
    assert paused[0] <= sample.steps_completed < 100


def test_reset_scene_refuses_unknown_conditions_and_bad_commands_are_ignored(graph):
    from std_msgs.msg import Float64MultiArray

    from gps_ros.srv import ResetScene

    task, learner, _, _ = graph
    learner.reset(0)
    stamp, q = learner.latest_state()
    for request, message in (
        (ResetScene.Request(mode=ResetScene.Request.MODE_CONDITION, condition=len(task.conditions)),
         f"condition: expected a Condition or an index in [0, {len(task.conditions)})"),
        (ResetScene.Request(mode=ResetScene.Request.MODE_OPERATOR), "mode: expected MODE_CONDITION (0) or MODE_RANDOM (1)"),
    ):
        resp = learner.wait(learner.reset_client.call_async(request), "reset_scene")
        assert not resp.success and resp.message.startswith(message), resp.message
    # Commands of the wrong length or with NaN do not step the lock-step sim.
    pub = learner.node.create_publisher(Float64MultiArray, "effort_controller/commands", 10)
    end = time.monotonic() + WAIT
    while pub.get_subscription_count() == 0 and time.monotonic() < end:  # the sim must hear them
        learner.rclpy.spin_once(learner.node, timeout_sec=0.05)
    for data in ([0.1, 0.1], [0.1, float("nan"), 0.0]):
        pub.publish(Float64MultiArray(data=data))
    stamp_after, q_after = learner.latest_state()
    learner.node.destroy_publisher(pub)
    assert stamp_after == stamp
    np.testing.assert_array_equal(q_after, q)
