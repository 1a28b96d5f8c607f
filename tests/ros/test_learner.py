"""The learner node driving sim + controller + recorder, each in its own process over real DDS:
a short traj_opt run learns and publishes LearnerStatus; a learner killed after a checkpoint
resumes without losing the iteration count or any recorded trial."""

import re
import time
from pathlib import Path

import pytest
import yaml

TASK = "reacher3"
WAIT = 240.0


def trial_files(folder):
    return sorted(p.name for p in Path(folder).glob("*.mcap"))


@pytest.fixture(scope="module")
def ros():
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture()
def graph(tmp_path, start_node):
    """sim (lock-step), controller and recorder started; (tmp_path, samples folder, start_node)."""
    samples = tmp_path / "samples"
    start_node("sim", f"task:={TASK}", "lock_step:=true", files=("sim.yaml",))
    start_node("controller", f"task:={TASK}", "state_timeout:=10.0", files=("controller.yaml", "controller_sim.yaml"))
    start_node("recorder", f"output_dir:={samples}", "use_sim_time:=true", files=("recorder.yaml",))
    return tmp_path, samples, start_node


def learner(graph, iterations, *params, samples_per_condition=3):
    tmp_path, samples, start_node = graph
    config = {"task": TASK, "algorithm": "traj_opt", "conditions": [0], "iterations": iterations,
              "samples_per_condition": samples_per_condition, "seed": 1, "kl_step": 1.0,
              "output_dir": str(tmp_path / "out")}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return start_node("learner", f"config:={path}", f"samples_dir:={samples}", "use_sim_time:=true",
                      "server_timeout:=60.0", *params)


def wait_exit(proc, rclpy, node, log):
    end = time.monotonic() + WAIT
    while proc.poll() is None and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    assert proc.poll() == 0, f"learner exit {proc.poll()}:\n{log.read_text()[-3000:]}"


def test_training_run_learns_and_publishes_status(ros, graph):
    from gps_ros.core.samples import TRIAL_COMPLETE
    from gps_ros.msg import LearnerStatus
    from gps_ros.ros.mcap_io import read_samples
    from gps_ros.ros.interfaces import LEARNER_STATUS
    from gps_ros.training.checkpoint import load_checkpoint

    tmp_path, samples, _ = graph
    node = ros.create_node("status_listener")
    statuses = []
    node.create_subscription(LearnerStatus, LEARNER_STATUS, statuses.append, 100)
    try:
        proc = learner(graph, 2)
        wait_exit(proc, ros, node, tmp_path / "learner.log")
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            ros.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
    state, _ = load_checkpoint(tmp_path / "out")
    costs = [m.mean_sample_cost for m in state.history]
    assert state.iteration == 2 and costs[1] < costs[0]
    # 3 samples + 1 evaluation trial per iteration, every one on disk complete. A failed attempt (the
    # learner logs its trial id) is on disk too, aborted, or complete when the controller finished it
    # after the learner gave up on it (a result timeout): recorded, but not a sample the learner used.
    log = (tmp_path / "learner.log").read_text()
    failed = {int(i) for i in re.findall(r"failed: trial (\d+):", log)}
    records = [r for _, r in read_samples(samples)]
    used = [r for r in records if r.status == TRIAL_COMPLETE and r.trial_id not in failed]
    assert len(used) == 8 == state.samples_total
    assert state.next_trial_id == max(r.trial_id for r in records) + 1
    phases = {m.phase for m in statuses}
    assert {"sampling", "dynamics", "checkpoint", "done"} <= phases
    final = [m for m in statuses if m.phase == "done"][-1]
    assert (final.algorithm, final.iteration, final.max_iterations, final.samples_total) == ("traj_opt", 1, 2, 8)
    assert abs(final.mean_cost - costs[1]) < 1e-9
    assert "final success" in log
    assert (tmp_path / "out" / "learning_curve.png").is_file()


def test_killed_learner_resumes_without_losing_samples(ros, graph):
    from gps_ros.core.samples import TRIAL_COMPLETE
    from gps_ros.ros.mcap_io import read_samples
    from gps_ros.training.checkpoint import checkpoint_file, load_checkpoint

    tmp_path, samples, _ = graph
    node = ros.create_node("resume_watcher")
    try:
        proc = learner(graph, 2)
        end = time.monotonic() + WAIT
        # SIGKILL once iteration 1 is checkpointed and a trial of iteration 2 is on disk
        while time.monotonic() < end and proc.poll() is None:
            if checkpoint_file(tmp_path / "out").is_file() and len(trial_files(samples)) >= 5:
                break
            time.sleep(0.01)
        assert proc.poll() is None, (tmp_path / "learner.log").read_text()[-3000:]
        proc.kill()
        proc.wait()
        # a trial in flight at the kill still ends and is recorded
        count, stable_since = len(trial_files(samples)), time.monotonic()
        while time.monotonic() - stable_since < 3.0:
            time.sleep(0.1)
            if len(trial_files(samples)) != count:
                count, stable_since = len(trial_files(samples)), time.monotonic()
        first, _ = load_checkpoint(tmp_path / "out")
        assert first.iteration == 1
        before = trial_files(samples)
        assert len(before) >= 5
        resumed = learner(graph, 2, "resume:=true")
        wait_exit(resumed, ros, node, tmp_path / "learner.log")
    finally:
        node.destroy_node()
    state, _ = load_checkpoint(tmp_path / "out")
    assert state.iteration == 2 and [m.iteration for m in state.history] == [1, 2]
    after = trial_files(samples)
    assert set(before) <= set(after)
    ids = [int(name[6:16]) for name in after]
    assert len(ids) == len(set(ids)) and all("_" not in name[16:] for name in after)  # no id was used twice
    assert min(set(after) - set(before)) > max(before)  # ids continue after the recorded ones
    log = (tmp_path / "learner.log").read_text()
    assert "resuming after iteration 1" in log
    # Every complete trial on disk is a counted sample: those of the interrupted iteration are re-used
    # (even one whose attempt the killed learner had given up on: it ran the checkpointed policy),
    # except a trial the resumed learner gave up on (its id in the log) that the controller finished.
    failed_after_resume = {int(i) for i in re.findall(r"failed: trial (\d+):", log.split("resuming after")[1])}
    complete = [r for _, r in read_samples(samples) if r.status == TRIAL_COMPLETE and r.trial_id not in failed_after_resume]
    assert state.next_trial_id == max(ids) + 1 and state.samples_total == len(complete)
    assert re.search(r"[1-9][0-9]* trials recorded since, [1-9][0-9]* re-used", log)


def test_manual_resets_wait_for_the_operator(ros, graph):
    """reset:=manual (the hardware default): every trial waits for an acknowledged ResetRequest,
    and the status says so meanwhile. The test is the operator: it resets the sim, then acknowledges."""
    from gps_ros.msg import LearnerStatus, ResetRequest
    from gps_ros.ros.interfaces import ACKNOWLEDGE_RESET, LEARNER_STATUS, RESET_REQUEST, RESET_SCENE
    from gps_ros.srv import AcknowledgeReset, ResetScene

    tmp_path, samples, _ = graph
    node = ros.create_node("operator")
    statuses, requests = [], []
    node.create_subscription(LearnerStatus, LEARNER_STATUS, statuses.append, 100)
    node.create_subscription(ResetRequest, RESET_REQUEST, requests.append, 100)
    ack, scene = node.create_client(AcknowledgeReset, ACKNOWLEDGE_RESET), node.create_client(ResetScene, RESET_SCENE)

    def call(client, request):
        assert client.wait_for_service(timeout_sec=WAIT)
        future = client.call_async(request)
        ros.spin_until_future_complete(node, future, timeout_sec=WAIT)
        return future.result()

    try:
        proc = learner(graph, 1, "reset:=manual", samples_per_condition=1)
        acknowledged, end = [], time.monotonic() + WAIT
        while proc.poll() is None and time.monotonic() < end:
            ros.spin_once(node, timeout_sec=0.05)
            pending = [r for r in requests if r.request_id not in acknowledged]
            if not pending:
                continue
            request = pending[-1]
            # no trial runs before the acknowledgement; the status shows the wait. At most one file per
            # acknowledged reset, not exactly one: on a loaded machine an attempt can fail unrecorded
            # ("the recorder did not confirm it") and be retried after a new reset.
            waited = time.monotonic()
            while time.monotonic() - waited < 2.5:
                ros.spin_once(node, timeout_sec=0.05)
            assert len(trial_files(samples)) <= len(acknowledged)
            assert statuses and statuses[-1].phase == "waiting_for_reset"
            assert call(scene, ResetScene.Request(mode=ResetScene.Request.MODE_CONDITION, condition=0)).success
            assert call(ack, AcknowledgeReset.Request(request_id=request.request_id)).accepted
            acknowledged.append(request.request_id)
        assert proc.wait(WAIT) == 0, (tmp_path / "learner.log").read_text()[-3000:]
    finally:
        node.destroy_node()
    # One acknowledged reset per trial attempt: one sample and one evaluation trial, plus any attempt
    # the learner retried (on a loaded machine a trial can time out; its retry asks for a new reset).
    retries = len(re.findall(r"attempt \d+/\d+ failed", (tmp_path / "learner.log").read_text()))
    assert len(acknowledged) == 2 + retries
    assert 2 <= len(trial_files(samples)) <= len(acknowledged)
