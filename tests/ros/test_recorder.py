"""The recorder: trial assembly and completeness checks, and the node end to end over DDS."""

import time

import numpy as np
import pytest

from gps_ros.core.samples import TRIAL_ABORTED, TRIAL_COMPLETE

S = 1_000_000_000
dX, dU, dO = 3, 2, 4


def _data(trial_id: int, T: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, dX)), rng.standard_normal((T, dU)), rng.standard_normal((T, dU)), rng.standard_normal((T, dO))


def _step(trial_id: int, t: int, T: int, data, condition: int = 1, state=None):
    from gps_ros.ros.conversions import TrialStepData, trial_step_to_msg

    X, U, E, O = data
    return trial_step_to_msg(TrialStepData(trial_id, condition, t, T, 1000 + t, X[t] if state is None else state, U[t], E[t], O[t]))


def _assembler(**kwargs):
    from gps_ros.ros.recorder_node import TrialAssembler

    return TrialAssembler(kwargs.pop("step_timeout", 2.0), kwargs.pop("abort_grace", 0.5), **kwargs)


def test_in_order_trial_is_complete_when_its_last_step_arrives():
    asm = _assembler(state_layout={"q": slice(0, 2), "qd": slice(2, 3)})
    data = _data(7, 5)
    finished = [f for t in range(5) for f in asm.add(_step(7, t, 5, data), now_ns=t)]
    assert len(finished) == 1 and not asm.open
    record, messages = finished[0]
    assert (record.trial_id, record.condition, record.horizon, record.status, record.abort_reason) == (7, 1, 5, TRIAL_COMPLETE, "")
    for got, expected in zip((record.sample.X, record.sample.U, record.sample.noise, record.sample.obs), data):
        np.testing.assert_array_equal(got[0], expected)
    np.testing.assert_array_equal(record.stamps_ns, 1000 + np.arange(5))
    assert record.sample.state_slices == {"q": slice(0, 2), "qd": slice(2, 3)}
    assert [m.step for m in messages] == list(range(5))


def test_missing_step_gives_an_aborted_sample_of_the_contiguous_prefix():
    asm = _assembler()
    data = _data(1, 6)
    (record, messages), = [f for t in (0, 1, 3, 4, 5) for f in asm.add(_step(1, t, 6, data), now_ns=t)]
    assert record.status == TRIAL_ABORTED and "missing steps [2] of 0..5" in record.abort_reason
    assert record.sample.T == 2
    np.testing.assert_array_equal(record.sample.X[0], data[0][:2])
    assert len(messages) == 5, "every received step is kept for the file"


def test_duplicate_and_inconsistent_steps_mark_the_trial_aborted():
    asm = _assembler()
    data = _data(2, 4)
    msgs = [_step(2, 0, 4, data), _step(2, 1, 4, data), _step(2, 1, 4, data), _step(2, 2, 4, data, state=np.zeros(dX + 1)),
            _step(2, 3, 4, data, condition=5)]
    finished = [f for m in msgs for f in asm.add(m, now_ns=0)]
    (record, messages), = finished
    assert record.status == TRIAL_ABORTED
    assert "step 1 arrived twice" in record.abort_reason
    assert "step 2 has (dX, dU, dO) = (4, 2, 4), expected (3, 2, 4)" in record.abort_reason
    assert "step 3 has condition 5" in record.abort_reason
    assert "missing steps [2-3]" in record.abort_reason
    assert record.sample.T == 2 and len(messages) == 5


def test_interleaved_trials_are_kept_apart():
    asm = _assembler()
    a, b = _data(10, 3, seed=1), _data(11, 3, seed=2)
    finished = []
    for t in range(3):
        finished += asm.add(_step(10, t, 3, a), now_ns=t)
        finished += asm.add(_step(11, t, 3, b), now_ns=t)
    assert [r.trial_id for r, _ in finished] == [10, 11]
    np.testing.assert_array_equal(finished[1][0].sample.U[0], b[1])


def test_timeout_abort_report_and_shutdown_write_incomplete_trials():
    asm = _assembler(step_timeout=2.0, abort_grace=0.5)
    data = _data(3, 5)
    asm.add(_step(3, 0, 5, data), now_ns=0)
    asm.add(_step(3, 1, 5, data), now_ns=1 * S)
    assert asm.expire(now_ns=2 * S) == [], "1 s after the last step: still waiting"
    (record, _), = asm.expire(now_ns=3 * S)
    assert record.status == TRIAL_ABORTED and record.abort_reason.startswith("no step for 2 s (timeout)")
    assert record.sample.T == 2

    asm.add(_step(4, 0, 5, data), now_ns=10 * S)
    asm.report_abort("controller aborted the trial", now_ns=10 * S)
    assert asm.expire(now_ns=10 * S + S // 4) == []
    (record, _), = asm.expire(now_ns=10 * S + S // 2)
    assert record.abort_reason.startswith("controller aborted the trial; missing steps [1-4]")

    asm.add(_step(5, 0, 5, data), now_ns=20 * S)
    (record, _), = asm.flush("recorder shut down")
    assert record.trial_id == 5 and record.abort_reason.startswith("recorder shut down")


def test_trial_missing_step_zero_keeps_the_step_it_has():
    asm = _assembler()
    data = _data(6, 3)
    (record, _), = asm.add(_step(6, 2, 3, data), now_ns=0)
    assert record.status == TRIAL_ABORTED and "step 0 missing" in record.abort_reason
    np.testing.assert_array_equal(record.sample.X[0], data[0][2:3])


def test_bad_input_raises_naming_the_field():
    from gps_ros.msg import TrialStep
    from gps_ros.ros.recorder_node import TrialAssembler, parse_layout

    with pytest.raises(ValueError, match="step_timeout: expected seconds > 0, got 0"):
        TrialAssembler(0.0, 0.5)
    with pytest.raises(ValueError, match=r"trial_step \(trial 9 step 4\).*step < horizon = 3"):
        _assembler().add(TrialStep(trial_id=9, step=4, horizon=3), now_ns=0)
    with pytest.raises(ValueError, match="state_layout: expected 'name:size"):
        parse_layout("state_layout", "q:seven")
    assert parse_layout("state_layout", "q:2, qd:2") == {"q": slice(0, 2), "qd": slice(2, 4)}


def test_a_repeated_trial_id_never_overwrites_an_earlier_file(tmp_path):
    from gps_ros.ros.mcap_io import write_trial
    from gps_ros.ros.recorder_node import unique_path

    asm = _assembler()
    data = _data(8, 1)
    paths = []
    for _ in range(3):
        (record, msgs), = asm.add(_step(8, 0, 1, data), now_ns=0)
        paths.append(write_trial(unique_path(tmp_path, record), record, msgs).name)
    assert paths == ["trial_0000000008.mcap", "trial_0000000008_1.mcap", "trial_0000000008_2.mcap"]


def test_recorder_node_writes_and_publishes_complete_and_aborted_trials(tmp_path):
    import rclpy
    from action_msgs.msg import GoalStatus, GoalStatusArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from gps_ros.msg import Sample, TrialStep
    from gps_ros.ros.interfaces import RECORDED_SAMPLES, RUN_TRIAL, TRIAL_STEPS
    from gps_ros.ros.mcap_io import read_samples, read_steps
    from gps_ros.ros.recorder_node import create_recorder

    rclpy.init()
    try:
        recorder = create_recorder(namespace="rec_test", parameter_overrides=[
            Parameter("output_dir", value=str(tmp_path)), Parameter("step_timeout", value=60.0),
            Parameter("abort_grace", value=0.2), Parameter("state_layout", value="q:2,qd:1")])
        peer = rclpy.create_node("controller_stand_in", namespace="rec_test")
        steps_pub = peer.create_publisher(TrialStep, TRIAL_STEPS, 100)
        status_pub = peer.create_publisher(GoalStatusArray, RUN_TRIAL + "/_action/status", 10)
        received = []
        peer.create_subscription(Sample, RECORDED_SAMPLES, received.append, 10)
        executor = SingleThreadedExecutor()
        executor.add_node(recorder)
        executor.add_node(peer)

        def spin_until(predicate, limit=60.0):
            end = time.monotonic() + limit
            while not predicate() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            assert predicate()

        spin_until(lambda: steps_pub.get_subscription_count() and recorder.sample_pub.get_subscription_count()
                   and status_pub.get_subscription_count())
        complete, partial = _data(21, 4, seed=1), _data(22, 4, seed=2)
        for t in range(4):
            steps_pub.publish(_step(21, t, 4, complete))
        for t in range(2):
            steps_pub.publish(_step(22, t, 4, partial))
        spin_until(lambda: len(received) == 1)
        aborted = GoalStatus(status=GoalStatus.STATUS_ABORTED)
        aborted.goal_info.goal_id.uuid = np.arange(16, dtype=np.uint8)
        status_pub.publish(GoalStatusArray(status_list=[aborted]))
        spin_until(lambda: len(received) == 2)
        recorder.destroy_node()
        peer.destroy_node()
    finally:
        rclpy.try_shutdown()

    assert [(m.trial_id, m.status) for m in received] == [(21, Sample.STATUS_COMPLETE), (22, Sample.STATUS_ABORTED)]
    assert received[1].abort_reason.startswith("controller aborted the trial; missing steps [2-3]")
    records = read_samples(tmp_path)
    assert [(p.name, r.trial_id, r.status) for p, r in records] == [
        ("trial_0000000021.mcap", 21, TRIAL_COMPLETE), ("trial_0000000022.mcap", 22, TRIAL_ABORTED)]
    np.testing.assert_array_equal(records[0][1].sample.X[0], complete[0])
    np.testing.assert_array_equal(records[1][1].sample.U[0], partial[1][:2])
    assert records[0][1].sample.state_slices == {"q": slice(0, 2), "qd": slice(2, 3)}
    assert [m.step for m in read_steps(records[0][0])] == [0, 1, 2, 3]


def test_sigint_writes_the_open_trial_before_the_recorder_exits(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import rclpy

    from gps_ros.msg import TrialStep
    from gps_ros.ros.interfaces import TRIAL_STEPS
    from gps_ros.ros.mcap_io import read_samples

    # started with SIGINT ignored (the shell's trap), as a background job's children are: the recorder must still stop on it
    proc = subprocess.Popen(["sh", "-c", "trap '' INT; exec \"$@\"", "sh",
                             sys.executable, "-m", "gps_ros.cli", "node", "recorder", "--ros-args", "-r", "__ns:=/rec_sigint",
                             "-p", f"output_dir:={tmp_path}", "-p", "step_timeout:=600.0"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    rclpy.init()
    try:
        node = rclpy.create_node("stand_in", namespace="rec_sigint")
        pub = node.create_publisher(TrialStep, TRIAL_STEPS, 100)
        while pub.get_subscription_count() == 0 and proc.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.05)
        data = _data(31, 5)
        for t in range(3):
            pub.publish(_step(31, t, 5, data))
        assert pub.wait_for_all_acked()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the recorder did not stop on SIGINT")
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert proc.returncode == 0, err
    ((path, record),) = read_samples(tmp_path)
    assert record.trial_id == 31 and record.status == TRIAL_ABORTED
    assert record.abort_reason.startswith("recorder shut down before the trial ended; missing steps [3-4]")
    np.testing.assert_array_equal(record.sample.X[0], data[0][:3])
