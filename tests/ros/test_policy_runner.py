"""The policy runner deploys a saved neural policy through sim + controller (their own processes,
real DDS): its final distances are those of the same policy run in-process by MujocoAgent."""

import re
import time

import numpy as np
import pytest

TASK = "reacher3"
CONDITIONS = (1, 5)


@pytest.fixture()
def saved_policy(tmp_path):
    import torch

    from gps_ros.policies.gaussian_policy import GaussianPolicy
    from gps_ros.policies.networks import PolicyArchitecture
    from gps_ros.policies.normalization import Normalization
    from gps_ros.policies.serialization import save_policy
    from gps_ros.sim import load_task

    task = load_task(TASK)
    arch = PolicyArchitecture(kind="mlp", dO=task.dO, dU=task.dU, hidden_sizes=(16, 16))
    policy = GaussianPolicy(arch, normalization=Normalization(np.zeros(task.dO), np.ones(task.dO)),
                            covariance=0.01 * np.eye(task.dU), device="cpu", seed=3)
    with torch.no_grad():  # small torques: the random network stays inside the joint limits
        for tensor in list(policy.network.parameters())[-2:]:
            tensor.mul_(0.3)
    path = tmp_path / "policy.pt"
    save_policy(policy, path)
    return task, policy, path


def test_policy_runner_reproduces_the_in_process_evaluation(tmp_path, start_node, saved_policy):
    from gps_ros.agents.evaluate import evaluate
    from gps_ros.agents.mujoco_agent import MujocoAgent

    task, policy, path = saved_policy
    start_node("sim", f"task:={TASK}", "lock_step:=true", files=("sim.yaml",))
    start_node("controller", f"task:={TASK}", "state_timeout:=10.0", files=("controller.yaml", "controller_sim.yaml"))
    runner = start_node("policy_runner", f"task:={TASK}", f"policy_file:={path}", "use_sim_time:=true",
                        f"conditions:=[{', '.join(map(str, CONDITIONS))}]", "wait_for_recorder:=false",
                        "server_timeout:=60.0")
    end = time.monotonic() + 240
    while runner.poll() is None and time.monotonic() < end:
        time.sleep(0.1)
    log = (tmp_path / "policy_runner.log").read_text()
    assert runner.poll() == 0, log[-3000:]
    reference = evaluate(MujocoAgent(task), policy, list(CONDITIONS))
    printed = [float(d) for d in re.findall(r"condition \d+: final distance ([0-9.]+) m", log)]
    np.testing.assert_allclose(printed, reference.final_distance, atol=1e-3)  # printed with 3 decimals
    assert f"success {100 * reference.success_rate:.0f}% of {len(CONDITIONS)} trials" in log


def test_policy_runner_refuses_a_policy_of_another_task(tmp_path, start_node, saved_policy):
    _, _, path = saved_policy
    runner = start_node("policy_runner", "task:=pr2_peg", f"policy_file:={path}")
    assert runner.wait(120) == 2
    log = (tmp_path / "policy_runner.log").read_text()
    assert "policy_file: expected a policy with (dO, dU) = (" in log and "for task pr2_peg, got (" in log
