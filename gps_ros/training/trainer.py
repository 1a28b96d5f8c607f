"""The trainer loop shared by `gps-ros train` (MujocoAgent) and the learner node (RosAgent).

Per iteration: sample ``samples_per_condition`` trials from each of the algorithm's local
policies through the Agent, run the algorithm's iteration, evaluate, then checkpoint,
save the global policy (when the algorithm has one) as global_policy.pt for deployment,
rewrite metrics.json + the learning curve, and report progress (terminal line and the
``on_progress`` callback).

Resume rule (ROS, where the recorder keeps every trial on disk): the checkpoint holds
``next_trial_id``, the first id after the last completed iteration. Recorded trials with
a larger or equal id belong to the interrupted iteration; they were drawn from the
checkpointed local policies, so ``interrupted_samples`` re-uses the complete ones: per
condition, the first ``samples_per_condition`` in trial-id order. Only the missing
trials are sampled again. The rest stay on disk: complete ones (e.g. evaluation trials)
are counted in ``samples_total``, aborted attempts are not. Trial ids continue at the
larger of the checkpoint's ``next_trial_id`` and the largest recorded id + 1, plus one:
a trial in flight when the learner stopped (at most one: trials run one at a time) may
still be written under that id, and must not share it with a new trial.
In-process there is no recorder: the interrupted iteration is re-sampled from the
checkpointed RNG state, which reproduces it exactly.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gps_ros.core.samples import TRIAL_COMPLETE, SampleBatch
from gps_ros.training.checkpoint import TrainerState, save_checkpoint
from gps_ros.training.config import TrainConfig
from gps_ros.training.progress import EtaClock, Progress
from gps_ros.training.registry import build_algorithm
from gps_ros.training.results import write_results

GLOBAL_POLICY = "global_policy.pt"  # the deployable policy (policy_runner, run_policy.launch.py)


@dataclass
class IterationMetrics:
    """iteration: 1-based; samples_so_far: training samples used up to it; success_rate /
    mean_final_distance: of the evaluation (the new policies' mean actions, or the
    iteration's samples when evaluation is off); seconds: wall time of the iteration."""

    iteration: int
    samples_so_far: int
    mean_sample_cost: float
    success_rate: float
    mean_final_distance: float
    seconds: float


def new_state(config: TrainConfig, task) -> TrainerState:
    """The state before the first iteration: the registered algorithm, a fresh seed stream."""
    return TrainerState(0, build_algorithm(config, task), np.random.default_rng(config.seed).bit_generator.state)


def check_resumable(config: TrainConfig, saved: Mapping, path: str) -> None:
    """A run resumes only with the settings that shaped its state (iterations may grow)."""
    current = config.to_dict()
    for key in ("task", "algorithm", "conditions", "samples_per_condition", "seed", "settings"):
        if current[key] != saved.get(key):
            raise ValueError(f"resume: {key} of the config is {current[key]!r}, the checkpoint in {path} "
                             f"was made with {saved.get(key)!r}; resume with the same {key}")


def interrupted_samples(records: Sequence, next_trial_id: int, conditions: Sequence[int],
                        samples_per_condition: int) -> tuple[dict[int, SampleBatch], int, int]:
    """(position in ``conditions`` -> SampleBatch to re-use, count of complete recorded
    trials at or after ``next_trial_id``, the trial id to continue with) from TrialRecords (see the module's
    resume rule)."""
    later = sorted((r for r in records if r.trial_id >= next_trial_id and r.status == TRIAL_COMPLETE),
                   key=lambda r: r.trial_id)
    reuse: dict[int, list[SampleBatch]] = {}
    for record in later:
        if record.condition not in conditions:
            continue
        m = list(conditions).index(record.condition)
        if len(reuse.setdefault(m, [])) < samples_per_condition:
            reuse[m].append(record.sample)
    next_id = max([next_trial_id] + [r.trial_id + 1 for r in records]) + 1
    return {m: SampleBatch.concatenate(s) for m, s in reuse.items()}, len(later), next_id


class Trainer:
    """Runs ``config.iterations`` iterations of ``state.algorithm`` on ``agent`` (any Agent;
    conditions are passed as indices), continuing from ``state``. task: success and
    final distance of the evaluation; output_dir: checkpoint, metrics, plot; reuse: samples
    of an interrupted iteration (interrupted_samples); on_progress: called with Progress."""

    def __init__(self, config: TrainConfig, task, agent, state: TrainerState, output_dir: str,
                 on_progress: Callable[[Progress], None] | None = None, log: Callable[[str], None] = print,
                 reuse: Mapping[int, SampleBatch] | None = None) -> None:
        self.config, self.task, self.agent, self.state = config, task, agent, state
        self.output_dir = output_dir
        self.on_progress = on_progress
        self.log = log
        self.reuse = dict(reuse or {})
        self.eta = EtaClock()
        self._last: IterationMetrics | None = state.history[-1] if state.history else None
        self._policy_saved = False

    @property
    def trials_per_iteration(self) -> int:
        return self.config.samples_per_condition * len(self.config.conditions)

    def run(self) -> list[IterationMetrics]:
        state, config = self.state, self.config
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        while state.iteration < config.iterations:
            self._iteration(rng)
        self._report("done", self.trials_per_iteration, message=self._summary())
        write_results(self.output_dir, config.to_dict(), state.history, done=True)
        self.log(self._summary())
        policy = f" and {GLOBAL_POLICY}" if self._policy_saved else ""
        self.log(f"wrote {self.output_dir}/metrics.json, learning_curve.png, checkpoint.pkl{policy}")
        return state.history

    def _iteration(self, rng: np.random.Generator) -> None:
        state, config, agent = self.state, self.config, self.agent
        algorithm = state.algorithm
        self.eta.start_iteration()
        n, conditions = config.samples_per_condition, list(config.conditions)
        # drawn before any sampling, so re-used samples leave the seed stream where it was
        seeds = [int(rng.integers(2**31)) for _ in conditions]
        batches, trials_run = [], 0
        sampling = algorithm.sampling_policies() if hasattr(algorithm, "sampling_policies") else algorithm.local_policies
        for m, (policy, condition, seed) in enumerate(zip(sampling, conditions, seeds)):
            self._report("sampling", m * n)
            parts = [self.reuse.pop(m)] if m in self.reuse else []
            done = parts[0].N if parts else 0
            if done < n:
                part_seed = seed if done == 0 else int(np.random.SeedSequence([seed, done]).generate_state(1)[0])
                parts.append(agent.sample_many(policy, [condition] * (n - done), seed=part_seed))
                trials_run += n - done
            batches.append(SampleBatch.concatenate(parts) if len(parts) > 1 else parts[0])
        self._report("dynamics", self.trials_per_iteration)
        if "on_phase" in inspect.signature(algorithm.iteration).parameters:
            result = algorithm.iteration(batches, on_phase=lambda phase: self._report(phase, self.trials_per_iteration))
        else:
            result = algorithm.iteration(batches)
        success, distance, eval_trials = self._evaluate(batches)
        state.iteration += 1
        state.samples_total += trials_run + eval_trials
        state.next_trial_id = int(getattr(agent, "next_trial_id", state.next_trial_id + trials_run + eval_trials))
        state.rng_state = rng.bit_generator.state
        metrics = IterationMetrics(state.iteration, state.iteration * self.trials_per_iteration,
                                   float(result.mean_sample_cost), success, distance, self.eta.end_iteration())
        state.history.append(metrics)
        self._last = metrics
        self._report("checkpoint", self.trials_per_iteration)
        save_checkpoint(self.output_dir, state, config.to_dict())
        self._save_global_policy(algorithm)
        write_results(self.output_dir, config.to_dict(), state.history)
        self.log(
            f"[{config.algorithm} {self.task.name}] iter {state.iteration}/{config.iterations}  "
            f"samples {metrics.samples_so_far}  cost of samples {metrics.mean_sample_cost:.4g}  "
            f"success {100 * success:.0f}%  final distance {distance:.3f} m  "
            f"({metrics.seconds:.1f} s, ETA {self._eta(False):.0f} s)"
        )

    def _save_global_policy(self, algorithm) -> None:
        """The neural global policy (if any) as a deployable file next to the checkpoint."""
        global_policy = getattr(algorithm, "global_policy", None)
        if global_policy is None:
            return
        from gps_ros.policies.gaussian_policy import GaussianPolicy
        from gps_ros.policies.serialization import save_policy

        if isinstance(global_policy, GaussianPolicy):
            save_policy(global_policy, Path(self.output_dir) / GLOBAL_POLICY)
            self._policy_saved = True

    def _evaluate(self, batches: Sequence[SampleBatch]) -> tuple[float, float, int]:
        """(success rate, mean final distance, trials run): the new policies' mean actions
        once per condition (the global policy when the algorithm has one), or the samples."""
        if not self.config.evaluate:
            X = np.concatenate([b.X for b in batches])
            return float(np.mean(self.task.success(X))), float(np.mean(self.task.final_distance(X))), 0
        self._report("sampling", self.trials_per_iteration, message="evaluation trials of the new policies")
        algorithm, conditions = self.state.algorithm, list(self.config.conditions)
        global_policy = getattr(algorithm, "global_policy", None)
        policies = [global_policy] * len(conditions) if global_policy is not None else list(algorithm.local_policies)
        noise = np.zeros((len(conditions), self.agent.T, self.agent.dU))
        X = self.agent.sample_many(policies, conditions, noise=noise, seed=0).X
        return float(np.mean(self.task.success(X))), float(np.mean(self.task.final_distance(X))), len(conditions)

    def _eta(self, in_iteration: bool) -> float:
        left = self.config.iterations - self.state.iteration + (1 if in_iteration else 0)
        return self.eta.remaining(left, in_iteration) if left > 0 else 0.0

    def _report(self, phase: str, trials_done: int, message: str = "") -> None:
        if self.on_progress is None:
            return
        last = self._last
        # checkpoint and done come after the iteration count moved on: they belong to the one before
        current = self.state.iteration - 1 if phase in ("checkpoint", "done") else self.state.iteration
        self.on_progress(Progress(
            algorithm=self.config.algorithm, phase=phase, iteration=max(current, 0),
            max_iterations=self.config.iterations, trials_done=trials_done,
            trials_per_iteration=self.trials_per_iteration, samples_total=self.state.samples_total,
            mean_cost=last.mean_sample_cost if last else math.nan,
            success_rate=last.success_rate if last else math.nan,
            seconds_remaining=self._eta(phase not in ("checkpoint", "done")), message=message,
        ))

    def _summary(self) -> str:
        last = self._last
        if last is None:
            return "no iterations run"
        return (f"done: {self.state.iteration} iterations, {self.state.samples_total} trials; final success "
                f"{100 * last.success_rate:.0f}% ({len(self.config.conditions)} conditions), mean final distance "
                f"{last.mean_final_distance:.3f} m")


def resume_state(config: TrainConfig, directory: str) -> TrainerState:
    """The state saved in ``directory``/checkpoint.pkl, checked against ``config``."""
    from gps_ros.training.checkpoint import checkpoint_file, load_checkpoint

    state, saved = load_checkpoint(directory)
    check_resumable(config, saved, str(checkpoint_file(directory)))
    return state
