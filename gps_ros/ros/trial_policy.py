"""A RunTrial goal checked in full and turned into what the controller executes.

Every check happens here, before the controller commands anything: a bad goal raises
ValueError naming the goal field (``horizon``, ``dt``, ``linear_gaussian.gains``,
``neural.dim_obs``, ``observation_sensors[2]``, ...), what was expected and what was given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.noise import draw_noise
from gps_ros.policies.base import LinearGaussianActor, Policy
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture, build_network
from gps_ros.policies.normalization import Normalization
from gps_ros.ros.conversions import NeuralCommand, linear_gaussian_from_msg, neural_from_msg
from gps_ros.ros.state_estimator import sensor_index

POLICY_LINEAR_GAUSSIAN = 0
POLICY_NEURAL = 1
IMAGE = "image"
DT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TrialPlan:
    """What one trial runs.

    state_index [dX] / obs_index [dO_low]: indices into the full task state making up x
    and the low-dimensional observation; obs_slices: the observation layout (with an
    "image" slice, the flattened channel-first image, when the policy sees images);
    noise [T, dU]: the standard-normal eps recorded (and, unless folded, applied).
    """

    trial_id: int
    condition: int
    horizon: int
    state_index: np.ndarray
    state_slices: dict[str, slice]
    obs_index: np.ndarray
    obs_slices: dict[str, slice]
    dO: int
    image_in_obs: bool
    record_images: bool
    policy: Policy
    noise: np.ndarray
    apply_noise: bool

    @property
    def needs_images(self) -> bool:
        return self.image_in_obs or self.record_images


def plan_trial(
    goal,
    state_layout: dict[str, slice],
    dU: int,
    control_period: float,
    max_horizon: int,
    image_shape: tuple[int, int] | None,
) -> TrialPlan:
    """Check ``goal`` (gps_ros/action/RunTrial.Goal) against the task and controller settings.

    state_layout: the full task state layout; dU: number of joints; image_shape: (H, W)
    of the camera, None when the controller has no camera.
    """
    T = int(goal.horizon)
    if not 1 <= T <= max_horizon:
        raise ValueError(f"horizon: expected 1 <= T <= max_horizon = {max_horizon}, got {T}")
    if not abs(goal.dt - control_period) <= DT_TOLERANCE:
        raise ValueError(f"dt: expected the controller's control period {control_period} s, got {goal.dt}")
    if not len(goal.state_sensors):
        raise ValueError(f"state_sensors: expected at least one of {list(state_layout)}, got none")
    state_index, state_slices = sensor_index("state_sensors", list(goal.state_sensors), state_layout)
    obs_names = list(goal.observation_sensors)
    image_in_obs = IMAGE in obs_names
    if image_in_obs and obs_names[-1] != IMAGE:
        raise ValueError(f"observation_sensors: expected 'image' last (after the low-dimensional sensors), "
                         f"got {obs_names}")
    if (image_in_obs or goal.record_images) and image_shape is None:
        raise ValueError("observation_sensors / record_images: images requested, but this controller has no camera "
                         "(parameter camera_enabled is false)")
    low_names = [n for n in obs_names if n != IMAGE]
    obs_index, obs_slices = sensor_index("observation_sensors", low_names, state_layout)
    dO = obs_index.size
    if image_in_obs:
        H, W = image_shape
        obs_slices[IMAGE] = slice(dO, dO + 3 * H * W)
        dO += 3 * H * W
    if dO == 0:
        raise ValueError(f"observation_sensors: expected at least one of {[*state_layout, IMAGE]}, got none")

    if goal.policy_type == POLICY_LINEAR_GAUSSIAN:
        policy, noise, apply_noise = _linear_gaussian(goal.linear_gaussian, T, state_index.size, dU)
    elif goal.policy_type == POLICY_NEURAL:
        policy, noise, apply_noise = _neural(goal.neural, T, dO, dU)
    else:
        raise ValueError(f"policy_type: expected {POLICY_LINEAR_GAUSSIAN} (POLICY_LINEAR_GAUSSIAN) or "
                         f"{POLICY_NEURAL} (POLICY_NEURAL), got {goal.policy_type}")
    return TrialPlan(int(goal.trial_id), int(goal.condition), T, state_index, state_slices, obs_index, obs_slices, dO,
                     image_in_obs, bool(goal.record_images), policy, noise, apply_noise)


def _linear_gaussian(msg, T: int, dX: int, dU: int) -> tuple[Policy, np.ndarray, bool]:
    cmd = linear_gaussian_from_msg(msg, "linear_gaussian")
    for field, got, want, what in (("horizon", cmd.K.shape[0], T, "the goal's horizon"),
                                   ("dim_x", cmd.K.shape[2], dX, "the size of state_sensors"),
                                   ("dim_u", cmd.K.shape[1], dU, "the number of joints")):
        if got != want:
            raise ValueError(f"linear_gaussian.{field}: expected {want} ({what}), got {got}")
    if cmd.cov is None:
        # Noise folded into k: the controller runs the mean; the identity covariance is never used.
        return LinearGaussianActor(LinearGaussianPolicy(cmd.K, cmd.k, np.broadcast_to(np.eye(dU), (T, dU, dU)))), \
            np.zeros((T, dU)), False
    # renorm as the agents draw it: every eps_t is marginally N(0, 1) whatever the smoothing.
    noise = draw_noise(np.random.default_rng(cmd.noise_seed), 1, T, dU, cmd.noise_smoothing, renorm=True)[0]
    return LinearGaussianActor(LinearGaussianPolicy(cmd.K, cmd.k, cmd.cov)), noise, True


def _neural(msg, T: int, dO: int, dU: int) -> tuple[Policy, np.ndarray, bool]:
    cmd = neural_from_msg(msg, T, "neural")
    if msg.dim_obs != dO:
        raise ValueError(f"neural.dim_obs: expected {dO} (the size of observation_sensors), got {msg.dim_obs}")
    if msg.dim_u != dU:
        raise ValueError(f"neural.dim_u: expected {dU} (the number of joints), got {msg.dim_u}")
    policy = gaussian_policy_from_command(cmd)
    if cmd.noise is None:
        return policy, np.zeros((T, dU)), False
    return policy, cmd.noise, True


def gaussian_policy_from_command(cmd: NeuralCommand) -> GaussianPolicy:
    """The CPU GaussianPolicy a NeuralCommand describes (scale = 1 / obs_std)."""
    try:
        arch = PolicyArchitecture.from_dict(dict(cmd.architecture))
    except (TypeError, ValueError) as err:
        raise ValueError(f"neural.architecture_json: expected a policy architecture, got {cmd.architecture} "
                         f"({err})") from None
    if (arch.dO, arch.dU) != (cmd.obs_mean.size, cmd.covariance.shape[0]):
        raise ValueError(f"neural.architecture_json: expected dO={cmd.obs_mean.size}, dU={cmd.covariance.shape[0]} "
                         f"(dim_obs, dim_u), got dO={arch.dO}, dU={arch.dU}")
    network = build_network(arch)
    shapes = {name: tuple(t.shape) for name, t in network.state_dict().items()}
    if list(cmd.parameters) != list(shapes):
        raise ValueError(f"neural.parameter_names: expected {list(shapes)}, got {list(cmd.parameters)}")
    for name, shape in shapes.items():
        if cmd.parameters[name].size != int(np.prod(shape)):
            raise ValueError(f"neural.parameter_sizes: expected {int(np.prod(shape))} for {name!r} "
                             f"(shape {list(shape)}), got {cmd.parameters[name].size}")
    network.load_state_dict({n: torch.from_numpy(cmd.parameters[n].reshape(s)) for n, s in shapes.items()})
    normalization = Normalization(cmd.obs_mean, 1.0 / cmd.obs_std)
    return GaussianPolicy(arch, network, normalization, cmd.covariance, device="cpu")
