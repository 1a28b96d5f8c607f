"""RosAgent against a fake controller and sim written here (not the real controller node)."""

import threading
import time

import numpy as np
import pytest

T, dX, dU = 6, 3, 2
A = np.array([[1.0, 0.05, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 0.95]])
B = np.array([[0.0, 0.0], [0.05, 0.0], [0.0, 0.05]])
X0 = np.array([0.3, -0.2, 0.1])


def rollout(K, k, x0=X0):
    """Independent truth: x_{t+1} = A x_t + B u_t with u_t = K_t x_t + k_t."""
    X, U = np.zeros((T, dX)), np.zeros((T, dU))
    x = x0.copy()
    for t in range(T):
        X[t], U[t] = x, K[t] @ x + k[t]
        x = A @ x + B @ U[t]
    return X, U


class FakeRobot:
    """Serves RunTrial (rolls the linear-Gaussian policy out on the linear system above)
    and ResetScene; logs events. hang: goals to leave unanswered until cancelled;
    wrong_id: answer with trial_id + 1000; stream_steps: also stream TrialSteps (for a recorder);
    drop_step: goals whose step 3 is not streamed (the recorder sees an incomplete trial)."""

    def __init__(self, rclpy, namespace, hang=0, wrong_id=False, stream_steps=False, drop_step=0):
        from rclpy.action import ActionServer, CancelResponse
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.executors import MultiThreadedExecutor

        from gps_ros.action import RunTrial
        from gps_ros.msg import TrialStep
        from gps_ros.ros.interfaces import RESET_SCENE, RUN_TRIAL, TRIAL_STEPS
        from gps_ros.srv import ResetScene

        self.hang, self.wrong_id, self.stream_steps, self.drop_step = hang, wrong_id, stream_steps, drop_step
        self.events = []
        self.goal_targets = []
        self.node = rclpy.create_node("fake_robot", namespace=namespace)
        group = ReentrantCallbackGroup()
        self.server = ActionServer(self.node, RunTrial, RUN_TRIAL, self._execute, callback_group=group,
                                   cancel_callback=lambda _: CancelResponse.ACCEPT)
        self.node.create_service(ResetScene, RESET_SCENE, self._reset, callback_group=group)
        self.steps_pub = self.node.create_publisher(TrialStep, TRIAL_STEPS, 100)
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)

    def add(self, node):
        self.executor.add_node(node)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.executor.shutdown()
        self.node.destroy_node()

    def _reset(self, request, response):
        self.events.append(("reset", request.mode, request.condition, request.seed))
        response.success = True
        response.target_position = [0.5, float(request.condition), float(request.seed % 7)]
        return response

    def _execute(self, handle):
        from gps_ros.action import RunTrial
        from gps_ros.core.samples import SampleBatch, TrialRecord
        from gps_ros.ros.conversions import TrialStepData, linear_gaussian_from_msg, sample_to_msg, trial_step_to_msg

        goal = handle.request
        self.events.append(("goal", goal.trial_id))
        self.goal_targets.append(list(goal.target_position))
        if self.hang > 0:
            self.hang -= 1
            while not handle.is_cancel_requested:
                time.sleep(0.01)
            self.events.append(("cancelled", goal.trial_id))
            handle.canceled()
            return RunTrial.Result()
        cmd = linear_gaussian_from_msg(goal.linear_gaussian)
        X, U = rollout(cmd.K, cmd.k)
        stamps = np.arange(T, dtype=np.int64) * 50_000_000
        if self.stream_steps:
            dropped = self.drop_step > 0
            self.drop_step -= dropped
            for t in [t for t in range(T) if not (dropped and t == 3)]:
                self.steps_pub.publish(trial_step_to_msg(TrialStepData(goal.trial_id, goal.condition, t, T, int(stamps[t]),
                                                                       X[t], U[t], np.zeros(dU), X[t])))
        record = TrialRecord(goal.trial_id + (1000 if self.wrong_id else 0), goal.condition, T,
                             SampleBatch(X[None], U[None]), stamps)
        handle.succeed()
        return RunTrial.Result(sample=sample_to_msg(record))


@pytest.fixture
def ros():
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


def _policy(seed=0):
    from gps_ros.core.linear_gaussian import LinearGaussianPolicy

    rng = np.random.default_rng(seed)
    L = rng.standard_normal((T, dU, dU)) * 0.3
    return LinearGaussianPolicy(rng.standard_normal((T, dU, dX)) * 0.5, rng.standard_normal((T, dU)),
                                L @ L.transpose(0, 2, 1) + 0.1 * np.eye(dU))


def _agent(rclpy, namespace, **config):
    from gps_ros.ros.ros_agent import RosAgent, RosAgentConfig

    node = rclpy.create_node("learner", namespace=namespace)
    defaults = dict(wait_for_recorder=False, server_timeout=30.0)
    return RosAgent(node, RosAgentConfig(T, dX, dU, dX, **{**defaults, **config}))


def test_sample_returns_the_noisy_rollout_after_a_sim_reset(ros):
    robot = FakeRobot(ros, "agent_a").start()
    agent = _agent(ros, "agent_a", reset="sim")
    policy = _policy()
    noise = np.random.default_rng(5).standard_normal((T, dU))
    batch = agent.sample(policy, condition=2, noise=noise)
    robot.stop()
    # u_t = K_t x_t + k_t + chol(C_t) eps_t, simulated independently
    X, U = rollout(policy.K, policy.k + np.einsum("tij,tj->ti", np.linalg.cholesky(policy.cov), noise))
    np.testing.assert_allclose(batch.X[0], X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(batch.U[0], U, rtol=1e-12, atol=1e-12)
    assert [e[:3] for e in robot.events] == [("reset", 0, 2), ("goal", 1)]
    assert robot.goal_targets == [[0.5, 2.0, float(robot.events[0][3] % 7)]], "the reset's target travels in the goal"


def test_sample_many_runs_one_reset_and_trial_per_condition(ros):
    robot = FakeRobot(ros, "agent_m").start()
    agent = _agent(ros, "agent_m", reset="sim")
    policies = [_policy(1), _policy(2)]
    noise = np.random.default_rng(6).standard_normal((2, T, dU))
    batch = agent.sample_many(policies, [0, 1], noise=noise)
    robot.stop()
    assert [e[:3] for e in robot.events] == [("reset", 0, 0), ("goal", 1), ("reset", 0, 1), ("goal", 2)]
    for i, policy in enumerate(policies):
        _, U = rollout(policy.K, policy.k + np.einsum("tij,tj->ti", np.linalg.cholesky(policy.cov), noise[i]))
        np.testing.assert_allclose(batch.U[i], U, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="policies: expected one policy or 2"):
        agent.sample_many(policies[:1], [0, 1])


def test_timeout_cancels_and_retries_with_a_new_trial_id_after_a_new_reset(ros):
    robot = FakeRobot(ros, "agent_b", hang=1).start()
    agent = _agent(ros, "agent_b", reset="sim", trial_timeout=1.0, retries=3)
    batch = agent.sample(_policy(), condition=None, seed=3)
    time.sleep(0.1)
    robot.stop()
    goals = [e[1] for e in robot.events if e[0] == "goal"]
    resets = [e for e in robot.events if e[0] == "reset"]
    assert goals[:2] == [1, 2] and ("cancelled", 1) in robot.events
    assert robot.events[0][0] == "reset" and robot.events[1] == ("goal", 1)
    assert len(resets) == len(goals), "a reset before every attempt"
    assert {r[1] for r in resets} == {1} and len({r[3] for r in resets}) == 1, "the same random placement (MODE_RANDOM, seed)"
    assert batch.N == 1 and batch.T == T


def test_result_with_another_trial_id_is_rejected(ros):
    robot = FakeRobot(ros, "agent_c", wrong_id=True).start()
    agent = _agent(ros, "agent_c", reset="none", retries=1)
    with pytest.raises(RuntimeError, match=r"trial failed after 2 attempts: trial 1: result has trial_id 1001, expected the goal's 1"):
        agent.sample(_policy(), condition=0)
    robot.stop()
    assert [e for e in robot.events if e[0] == "goal"] == [("goal", 1), ("goal", 2)]


def test_manual_reset_blocks_until_the_operator_acknowledges(ros):
    from gps_ros.msg import ResetRequest
    from gps_ros.ros.interfaces import ACKNOWLEDGE_RESET, RESET_REQUEST
    from gps_ros.srv import AcknowledgeReset

    robot = FakeRobot(ros, "agent_d")
    operator = ros.create_node("operator", namespace="agent_d")
    requests, answers, goals_seen_at_ack = [], [], []
    operator.create_subscription(ResetRequest, RESET_REQUEST, requests.append, 10)
    ack = operator.create_client(AcknowledgeReset, ACKNOWLEDGE_RESET)
    robot.add(operator)
    robot.start()

    def operate():
        while not requests:
            time.sleep(0.01)
        request = requests[0]
        for request_id in (request.request_id + 7, request.request_id):
            time.sleep(0.3)
            goals_seen_at_ack.append(len([e for e in robot.events if e[0] == "goal"]))
            answers.append(ack.call(AcknowledgeReset.Request(request_id=request_id)))

    thread = threading.Thread(target=operate, daemon=True)
    thread.start()
    agent = _agent(ros, "agent_d", reset="manual", condition_instruction="place the hole board at condition {condition}")
    batch = agent.sample(_policy(), condition=3)
    thread.join()
    robot.stop()
    assert requests[0].instruction == "place the hole board at condition 3"
    assert (requests[0].mode, requests[0].condition) == (ResetRequest.MODE_CONDITION, 3)
    assert [a.accepted for a in answers] == [False, True]
    assert goals_seen_at_ack == [0, 0], "no trial may start before the acknowledgement"
    assert [e[0] for e in robot.events] == ["goal"] and batch.T == T


def test_waits_for_the_recorder_and_the_trial_is_on_disk(ros, tmp_path):
    from rclpy.parameter import Parameter

    from gps_ros.ros.mcap_io import read_samples
    from gps_ros.ros.recorder_node import create_recorder

    robot = FakeRobot(ros, "agent_e", stream_steps=True)
    robot.add(create_recorder(namespace="agent_e", parameter_overrides=[Parameter("output_dir", value=str(tmp_path))]))
    robot.start()
    agent = _agent(ros, "agent_e", reset="none", wait_for_recorder=True, recorder_timeout=60.0)
    batch = agent.sample(_policy(), condition=1, seed=0)
    assert agent.recorded[1]
    robot.stop()
    ((_, record),) = read_samples(tmp_path)
    assert record.trial_id == 1
    np.testing.assert_array_equal(record.sample.X[0], batch.X[0])


def test_a_trial_the_recorder_wrote_incomplete_is_run_again(ros, tmp_path):
    from rclpy.parameter import Parameter

    from gps_ros.core.samples import TRIAL_COMPLETE
    from gps_ros.ros.mcap_io import read_samples
    from gps_ros.ros.recorder_node import create_recorder

    robot = FakeRobot(ros, "agent_i", stream_steps=True, drop_step=1)
    robot.add(create_recorder(namespace="agent_i", parameter_overrides=[
        Parameter("output_dir", value=str(tmp_path)), Parameter("step_timeout", value=1.0)]))
    robot.start()
    agent = _agent(ros, "agent_i", reset="none", wait_for_recorder=True, recorder_timeout=60.0)
    batch = agent.sample(_policy(), condition=1, seed=0)
    robot.stop()
    assert [e for e in robot.events if e[0] == "goal"] == [("goal", 1), ("goal", 2)]
    records = {r.trial_id: r for _, r in read_samples(tmp_path)}
    assert records[1].status != TRIAL_COMPLETE and records[2].status == TRIAL_COMPLETE
    np.testing.assert_array_equal(records[2].sample.X[0], batch.X[0])  # the sample used is the one on disk


def test_no_trial_starts_while_no_recorder_is_on_the_graph(ros):
    robot = FakeRobot(ros, "agent_n").start()
    agent = _agent(ros, "agent_n", reset="sim", wait_for_recorder=True, server_timeout=1.0, retries=1)
    with pytest.raises(RuntimeError, match=r"no recorder \(subscriber of /agent_n/trial_steps .*wait_for_recorder:=false"):
        agent.sample(_policy(), condition=0, seed=0)
    robot.stop()
    assert robot.events == []


def test_a_trial_the_recorder_does_not_confirm_is_not_used(ros):
    from gps_ros.msg import Sample, TrialStep
    from gps_ros.ros.interfaces import RECORDED_SAMPLES, TRIAL_STEPS

    robot = FakeRobot(ros, "agent_m", stream_steps=True)
    # on the graph like a recorder, but it never confirms a trial
    silent = ros.create_node("silent_recorder", namespace="agent_m")
    silent.create_subscription(TrialStep, TRIAL_STEPS, lambda _: None, 100)
    silent.create_publisher(Sample, RECORDED_SAMPLES, 10)
    robot.add(silent)
    robot.start()
    agent = _agent(ros, "agent_m", reset="none", wait_for_recorder=True, recorder_timeout=0.5, retries=1)
    with pytest.raises(RuntimeError, match=r"trial failed after 2 attempts: trial 1: the recorder did not confirm it "
                                           r"within 0.5 s; trial 2: the recorder did not confirm"):
        agent.sample(_policy(), condition=0, seed=0)
    robot.stop()
    assert [e for e in robot.events if e[0] == "goal"] == [("goal", 1), ("goal", 2)]


def test_bad_input_raises_before_any_reset_or_goal(ros):
    robot = FakeRobot(ros, "agent_f").start()
    agent = _agent(ros, "agent_f", reset="sim")
    from gps_ros.core.linear_gaussian import LinearGaussianPolicy

    wrong = LinearGaussianPolicy(np.zeros((T, dU, dX + 1)), np.zeros((T, dU)), np.tile(np.eye(dU), (T, 1, 1)))
    with pytest.raises(ValueError, match=r"policy: expected T=6, dX=3, dU=2, got T=6, dX=4, dU=2"):
        agent.sample(wrong, condition=0)
    with pytest.raises(ValueError, match="condition: expected a condition index >= 0 or None"):
        agent.sample(_policy(), condition="left")
    with pytest.raises(ValueError, match=r"noise: .*"):
        agent.sample(_policy(), condition=0, noise=np.zeros((T + 1, dU)))
    robot.stop()
    assert robot.events == []
    from gps_ros.ros.ros_agent import RosAgentConfig

    with pytest.raises(ValueError, match="reset: expected one of"):
        RosAgentConfig(T, dX, dU, dX, reset="robot")
    with pytest.raises(ValueError, match="trial_timeout: expected seconds > 0, got -1"):
        RosAgentConfig(T, dX, dU, dX, trial_timeout=-1)


def test_neural_policy_goal_rebuilds_the_same_policy_on_the_controller_side():
    import torch

    from gps_ros.policies.gaussian_policy import GaussianPolicy
    from gps_ros.policies.networks import PolicyArchitecture
    from gps_ros.policies.normalization import Normalization
    from gps_ros.ros.conversions import neural_from_msg, neural_to_msg
    from gps_ros.ros.ros_agent import neural_command
    from gps_ros.ros.trial_policy import gaussian_policy_from_command

    arch = PolicyArchitecture("mlp", 4, dU, hidden_sizes=(8,))
    policy = GaussianPolicy(arch, normalization=Normalization(np.array([0.1, -0.2, 0.3, 0.0]), np.array([2.0, 0.5, 1.0, 4.0])),
                            covariance=np.array([[0.2, 0.05], [0.05, 0.1]]), device="cpu", seed=1)
    noise = np.random.default_rng(0).standard_normal((T, dU))
    cmd = neural_from_msg(neural_to_msg(neural_command(policy, noise)), horizon=T)
    np.testing.assert_array_equal(cmd.noise, noise)
    np.testing.assert_allclose(cmd.obs_std, [0.5, 2.0, 1.0, 0.25])
    back = gaussian_policy_from_command(cmd)  # what the controller runs
    obs = np.random.default_rng(1).standard_normal(4)
    with torch.no_grad():
        np.testing.assert_allclose(back.act(None, obs, 0, noise[0]), policy.act(None, obs, 0, noise[0]), rtol=1e-6, atol=1e-6)


def test_agent_settings_are_node_parameters(ros):
    from rclpy.parameter import Parameter

    from gps_ros.ros.ros_agent import declare_agent_parameters

    node = ros.create_node("learner_params", parameter_overrides=[
        Parameter("reset", value="manual"), Parameter("retries", value=4), Parameter("trial_timeout", value=12.5)])
    config = declare_agent_parameters(node, T, dX, dU, dX)
    assert (config.reset, config.retries, config.trial_timeout, config.manual_timeout) == ("manual", 4, 12.5, None)
    assert config.result_timeout == 12.5
    described = node.describe_parameters(["server_timeout", "manual_timeout"])
    assert all(d.description for d in described)
    node.destroy_node()
