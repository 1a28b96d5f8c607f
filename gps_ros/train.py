"""The training job behind `make train` / `gps-ros train`: an algorithm on a MuJoCo task, in-process.

`gps-ros train [CONFIG.yaml] [key:=value ...] [resume:=DIR|true]` reads a training config
(config/train/*.yaml), runs the trainer loop (gps_ros.training.trainer, the same loop the
learner node runs over ROS) with the in-process MujocoAgent, prints progress (iteration,
samples, cost, success, ETA), and after every iteration writes checkpoint.pkl,
metrics.json and learning_curve.png to output_dir. ``resume:=DIR`` continues from
DIR/checkpoint.pkl (``true``: the config's output_dir) up to ``iterations``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gps_ros.agents.mujoco_agent import MujocoAgent
from gps_ros.training.config import TrainConfig, load_config
from gps_ros.training.progress import Progress
from gps_ros.training.trainer import IterationMetrics, Trainer, new_state, resume_state


def run_training(config: TrainConfig, log: Callable[[str], None] = print, resume: str | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> list[IterationMetrics]:
    """All iterations of ``config`` (from the checkpoint in ``resume`` when given); returns the history."""
    agent = MujocoAgent(config.task)
    state = resume_state(config, resume) if resume else new_state(config, agent.task)
    return Trainer(config, agent.task, agent, state, config.output_dir, on_progress, log).run()


def resume_dir(value: object, output_dir: str) -> str | None:
    """The checkpoint folder a ``resume`` setting names: a path, true (output_dir) or false/"" (none)."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "false")):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return output_dir
    if not isinstance(value, str):
        raise ValueError(f"resume: expected a checkpoint folder, true or false, got {value!r}")
    return value


def train_main(args: Sequence[str]) -> int:
    """`gps-ros train [CONFIG.yaml] [key:=value ...] [resume:=DIR|true]`."""
    path = next((a for a in args if ":=" not in a), None)
    resume = [a.partition(":=")[2] for a in args if a.startswith("resume:=")]
    overrides = [a for a in args if ":=" in a and not a.startswith("resume:=")]
    config = load_config(path, overrides)
    run_training(config, resume=resume_dir(resume[-1], config.output_dir) if resume else None)
    return 0
