"""The trainer loop in-process (MujocoAgent, no ROS): learning, checkpoints, resume."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gps_ros
from gps_ros.core.samples import TRIAL_ABORTED, SampleBatch, TrialRecord
from gps_ros.train import resume_dir, run_training
from gps_ros.training.checkpoint import FILENAME, load_checkpoint
from gps_ros.training.config import TrainConfig, load_config
from gps_ros.training.trainer import interrupted_samples

ROOT = Path(__file__).resolve().parents[2]
# the gps_ros this test imported (the source tree or what `make build` installed), for subprocesses
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(gps_ros.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}


def config(tmp_path, name, **overrides):
    values = dict(task="reacher3", conditions=[0, 4], iterations=3, samples_per_condition=4, seed=3,
                  output_dir=str(tmp_path / name))
    return TrainConfig.from_dict({**values, **overrides})


def without_seconds(history):
    return [{k: v for k, v in vars(m).items() if k != "seconds"} for m in history]


def test_short_run_improves_the_cost_and_reports_progress(tmp_path):
    seen = []
    history = run_training(config(tmp_path, "run", iterations=4), log=lambda line: None, on_progress=seen.append)
    costs = [m.mean_sample_cost for m in history]
    assert costs[-1] < 0.9 * costs[0]
    assert [m.iteration for m in history] == [1, 2, 3, 4]
    phases = [p.phase for p in seen]
    assert phases[0] == "sampling" and phases[-1] == "done"
    assert phases.count("checkpoint") == 4 and phases.count("dynamics") == 4
    # no ETA before the first iteration finished, a number afterwards
    assert np.isnan(seen[0].seconds_remaining) and seen[-2].seconds_remaining >= 0
    assert [p.iteration for p in seen if p.phase == "checkpoint"] == [0, 1, 2, 3]
    assert seen[-1].samples_total == 4 * (2 * 4 + 2)  # samples + one evaluation trial per condition
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["done"] and [m["mean_sample_cost"] for m in metrics["iterations"]] == costs
    assert (tmp_path / "run" / "learning_curve.png").stat().st_size > 0


def test_resume_in_a_fresh_process_equals_an_uninterrupted_run(tmp_path):
    straight = run_training(config(tmp_path, "straight"), log=lambda line: None)
    run_training(config(tmp_path, "interrupted", iterations=2), log=lambda line: None)
    # the third iteration in a new interpreter, from the checkpoint only
    args = [f"{k}:={json.dumps(v)}" for k, v in config(tmp_path, "interrupted").to_dict().items()
            if k not in ("initial_policy",)]
    done = subprocess.run([sys.executable, "-m", "gps_ros.cli", "train", *args, "resume:=true"], cwd=tmp_path,
                          env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "iter 3/3" in done.stdout
    resumed, _ = load_checkpoint(tmp_path / "interrupted")
    reference, _ = load_checkpoint(tmp_path / "straight")
    assert resumed.iteration == 3
    assert without_seconds(resumed.history) == without_seconds(straight)
    for a, b in zip(resumed.algorithm.local_policies, reference.algorithm.local_policies):
        np.testing.assert_allclose(a.K, b.K, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.k, b.k, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.cov, b.cov, rtol=0, atol=1e-12)
    assert resumed.rng_state == reference.rng_state and resumed.samples_total == reference.samples_total


def test_checkpoint_round_trips_the_algorithm_state(tmp_path):
    run_training(config(tmp_path, "a", iterations=2), log=lambda line: None)
    state, saved = load_checkpoint(tmp_path / "a")
    again = pickle.loads(pickle.dumps(state.algorithm))
    assert saved["iterations"] == 2 and state.algorithm.iteration_count == 2 == again.iteration_count
    for a, b in zip(state.algorithm._conditions, again._conditions):
        assert a.step_mult == b.step_mult and a.eta == b.eta
        np.testing.assert_array_equal(a.policy.K, b.policy.K)


def test_missing_corrupt_or_foreign_checkpoint_is_refused_naming_the_path(tmp_path):
    cfg = config(tmp_path, "run", iterations=1)
    with pytest.raises(ValueError, match=str(tmp_path / "nowhere" / FILENAME)):
        run_training(cfg, resume=str(tmp_path / "nowhere"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / FILENAME).write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=f"{tmp_path / 'bad' / FILENAME} is not a readable checkpoint"):
        run_training(cfg, resume=str(tmp_path / "bad"))
    (tmp_path / "bad" / FILENAME).write_bytes(pickle.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="is not a gps_ros.checkpoint/1 checkpoint"):
        run_training(cfg, resume=str(tmp_path / "bad"))
    run_training(cfg, log=lambda line: None)
    other = config(tmp_path, "run", iterations=2, seed=4)
    with pytest.raises(ValueError, match=r"resume: seed of the config is 4, .*was made with 3"):
        run_training(other, resume=str(tmp_path / "run"))


def _record(trial_id, condition, value, status="complete"):
    X = np.full((1, 2, 1), float(value))
    sample = SampleBatch(X, np.zeros((1, 2, 1)), X.copy(), np.zeros((1, 2, 1)), {"x": slice(0, 1)})
    return TrialRecord(trial_id, condition, 2, sample, np.arange(2, dtype=np.int64), status,
                       "" if status == "complete" else "cut")


def test_interrupted_samples_rule():
    records = [
        _record(3, 0, 3.0),                       # before the checkpoint: already used
        _record(5, 0, 5.0), _record(6, 0, 6.0, TRIAL_ABORTED), _record(7, 0, 7.0), _record(8, 0, 8.0),
        _record(9, 4, 9.0), _record(10, 2, 10.0),  # condition 2 is not trained: kept, not used
        _record(11, 0, 11.0),                      # e.g. an evaluation trial after the samples
    ]
    reuse, found, next_id = interrupted_samples(records, 5, [0, 4], 3)
    assert found == 6 and next_id == 13  # 12 may belong to a trial in flight at the stop
    assert reuse[0].X[:, 0, 0].tolist() == [5.0, 7.0, 8.0]
    assert reuse[1].X[:, 0, 0].tolist() == [9.0]
    assert interrupted_samples([], 4, [0], 2) == ({}, 0, 5)


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"train.algorithm: expected one of \['badmm', 'mdgps', 'traj_opt'\]"):
        TrainConfig.from_dict({"task": "reacher3", "algorithm": "nope"})
    with pytest.raises(ValueError, match="train.iterations: expected an integer >= 1, got 0"):
        TrainConfig.from_dict({"task": "reacher3", "iterations": 0})
    with pytest.raises(ValueError, match="train.conditions: expected a non-empty list"):
        TrainConfig.from_dict({"task": "reacher3", "conditions": [-1]})
    with pytest.raises(ValueError, match="train.bogus: unknown key"):
        TrainConfig.from_dict({"task": "reacher3", "bogus": 1})
    with pytest.raises(ValueError, match="config: expected a training config YAML file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="resume: expected a checkpoint folder, true or false"):
        resume_dir(3, "out")
    assert resume_dir("true", "out") == "out" and resume_dir(False, "out") is None and resume_dir("d", "out") == "d"


def test_shipped_configs_load():
    for name in ("traj_opt_reacher.yaml", "traj_opt_reacher_ros.yaml"):
        assert load_config(ROOT / "config" / "train" / name).algorithm == "traj_opt"
    assert load_config(ROOT / "config" / "train" / "mdgps_peg.yaml").algorithm == "mdgps"


@pytest.mark.parametrize("sampling", ["off_policy", "on_policy"])
def test_mdgps_config_builds_the_papers_algorithm(sampling):
    from gps_ros.algorithms.mdgps import MDGPS
    from gps_ros.sim import load_task
    from gps_ros.training.registry import build_algorithm

    cfg = load_config(ROOT / "config" / "train" / "mdgps_peg.yaml",
                      [f"settings:={{sampling: {sampling}, step_rule: global, s_step_iterations: 7}}"])
    task = load_task(cfg.task)
    algorithm = build_algorithm(cfg, task)
    assert isinstance(algorithm, MDGPS)
    assert (algorithm.config.sampling, algorithm.config.step_rule, algorithm.config.kl_step) == (sampling, "global", 2.0)
    assert algorithm.config.s_step.iterations == 7 and algorithm.config.s_step.seed == cfg.seed
    assert algorithm.config.s_step.lr_schedule == "cosine"
    assert algorithm.global_policy.architecture.hidden_sizes == (40, 40)  # the defaults fill what the file leaves out
    # the trainer samples sampling_policies(): before the first S-step, the local policies either way
    assert all(p is local for p, local in zip(algorithm.sampling_policies(), algorithm.local_policies))
    # initial local policies: the config's PD (kp 20) holding each condition's start
    np.testing.assert_allclose(algorithm.local_policies[1].K[0][:, task.state_slices["joint_angles"]], -20.0 * np.eye(7))
    with pytest.raises(ValueError, match=r"settings.hidden: unknown key for mdgps; expected one of \['hidden_sizes'"):
        build_algorithm(load_config(ROOT / "config" / "train" / "mdgps_peg.yaml", ["settings:={hidden: [3]}"]), task)
    assert algorithm.config.s_step_history == 1
    history = load_config(ROOT / "config" / "train" / "mdgps_peg.yaml", ["settings:={s_step_history: 3}"])
    assert build_algorithm(history, task).config.s_step_history == 3
    with pytest.raises(ValueError, match="s_step_history: expected an integer >= 1, got 0"):
        build_algorithm(load_config(ROOT / "config" / "train" / "mdgps_peg.yaml", ["settings:={s_step_history: 0}"]), task)
    constant = load_config(ROOT / "config" / "train" / "mdgps_peg.yaml", ["settings:={s_step_lr_schedule: constant}"])
    assert build_algorithm(constant, task).config.s_step.lr_schedule == "constant"
    with pytest.raises(ValueError, match=r"settings.s_step_lr_schedule: expected one of \('constant', 'cosine'\), got 'step'"):
        build_algorithm(load_config(ROOT / "config" / "train" / "mdgps_peg.yaml", ["settings:={s_step_lr_schedule: step}"]), task)
    with pytest.raises(ValueError, match="settings.s_step_history: unknown key for badmm"):
        build_algorithm(load_config(ROOT / "config" / "train" / "mdgps_peg.yaml", ["algorithm:=badmm"]), task)


class _Phased:
    """A plug-in algorithm: traj_opt plus a fixed global policy, reporting its phases."""

    def __init__(self, config, task):
        from gps_ros.training.registry import build_traj_opt

        self.inner = build_traj_opt(config, task)
        self.global_policy = self.inner.local_policies[0]

    @property
    def local_policies(self):
        return self.inner.local_policies

    def iteration(self, samples, on_phase):
        for phase in ("dynamics", "c_step", "s_step"):
            on_phase(phase)
        return self.inner.iteration(samples)


def test_a_registered_algorithm_plugs_in(tmp_path, monkeypatch):
    from gps_ros.training import registry

    monkeypatch.setitem(registry._BUILDERS, "phased", _Phased)
    seen = []
    cfg = config(tmp_path, "plug", algorithm="phased", iterations=2, conditions=[0])
    history = run_training(cfg, log=lambda line: None, on_progress=seen.append)
    assert [p.phase for p in seen if p.iteration == 0][-5:] == ["dynamics", "c_step", "s_step", "sampling", "checkpoint"]
    assert len(history) == 2
    state, _ = load_checkpoint(tmp_path / "plug")
    assert isinstance(state.algorithm, _Phased)
    with pytest.raises(ValueError, match="train.algorithm: expected one of .* or a module gps_ros/algorithms/<name>.py"):
        TrainConfig.from_dict({"task": "reacher3", "algorithm": "no_such_algorithm"})
