"""policy_runner node: deploys a trained neural policy on the arm (sim or hardware), no learning.

Loads the policy file (gps_ros.policies.serialization, e.g. the learner's
<output_dir>/global_policy.pt), then runs it through the controller with mean actions (or
with its own exploration noise, explore:=true) once per requested condition and per
random placement, each after a scene reset (the sim's ResetScene, or the operator on
hardware, as in the learner), and prints each trial's final distance and the success rate.
The RunTrial goals carry the network, so the controller validates them like any trial.
"""

from __future__ import annotations

import sys

import numpy as np

from gps_ros.ros import require_ros

_DOCS = {
    "policy_file": "the trained policy (gps_ros.policies.serialization), e.g. <learner output_dir>/global_policy.pt",
    "config": "training config YAML: its task and conditions are the defaults of `task` and `conditions`",
    "task": "task name (config/tasks) or YAML path; empty: the config's task",
    "conditions": "fixed condition indices to run; empty: the config's conditions, else every fixed condition",
    "random_placements": "extra trials at random placements (sim: ResetScene MODE_RANDOM; hardware: the operator)",
    "explore": "false: mean actions; true: the policy's Gaussian noise",
    "seed": "seed of the random placements and of the exploration noise",
}


def run(node) -> int:
    """Declare the parameters, run the trials, print the results; the exit status."""
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.parameter import Parameter

    from gps_ros.policies.serialization import load_policy
    from gps_ros.ros.ros_agent import RosAgent, agent_config_for_task
    from gps_ros.sim import load_task
    from gps_ros.training.config import load_config

    defaults = {"policy_file": "", "config": "", "task": "", "conditions": Parameter.Type.INTEGER_ARRAY,
                "random_placements": 0, "explore": False, "seed": 0}
    p = {name: node.declare_parameter(name, value, ParameterDescriptor(description=_DOCS[name])).value
         for name, value in defaults.items()}
    log = node.get_logger()
    if not p["policy_file"]:
        log.error("policy_file: expected the path of a trained policy, got none")
        return 2
    config = load_config(p["config"]) if p["config"] else None
    task = load_task(p["task"] or (config.task if config else "reacher3"))
    conditions = list(p["conditions"] or (config.conditions if config else range(len(task.conditions))))
    bad = [c for c in conditions if not 0 <= c < len(task.conditions)]
    if bad:
        raise ValueError(f"conditions: expected indices in [0, {len(task.conditions)}) of task {task.name}, got {bad}")
    if p["random_placements"] < 0:
        raise ValueError(f"random_placements: expected a count >= 0, got {p['random_placements']}")
    policy = load_policy(p["policy_file"], device="cpu")
    if (policy.dO, policy.dU) != (task.dO, task.dU):
        raise ValueError(f"policy_file: expected a policy with (dO, dU) = {(task.dO, task.dU)} for task {task.name}, "
                         f"got {(policy.dO, policy.dU)}")
    agent = RosAgent(node, agent_config_for_task(node, task))
    trials: list[int | None] = [*conditions, *([None] * p["random_placements"])]
    noise = None if p["explore"] else np.zeros((len(trials), task.T, task.dU))
    X = agent.sample_many(policy, trials, noise=noise, seed=p["seed"]).X
    distance, success = task.final_distance(X), task.success(X)
    for trial, d, ok in zip(trials, distance, success):
        where = f"condition {trial}" if trial is not None else "random placement"
        print(f"{where}: final distance {d:.3f} m, {'success' if ok else 'miss'}", flush=True)
    print(f"policy {p['policy_file']} on {task.name}: success {100 * np.mean(success):.0f}% of {len(trials)} trials, "
          f"mean final distance {np.mean(distance):.3f} m", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    rclpy = require_ros("rclpy", "the policy runner node")
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("policy_runner")
    try:
        return run(node)
    except (ValueError, RuntimeError) as err:
        node.get_logger().error(str(err))
        return 2 if isinstance(err, ValueError) else 1
    except KeyboardInterrupt:
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
