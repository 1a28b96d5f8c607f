"""numpy <-> gps_ros / standard ROS 2 messages.

Arrays travel flattened row-major (C order) in ``float64[]`` fields; every ``*_from_msg``
reshapes with the dimensions the message carries and checks size and finiteness, so a
malformed message raises ``ValueError`` naming the field before anything acts on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gps_ros.core.samples import TRIAL_ABORTED, TRIAL_COMPLETE, SampleBatch, TrialRecord
from gps_ros.core.validation import check_array, check_positive_definite
from gps_ros.ros import require_ros

_msgs = require_ros("gps_ros.msg", "gps_ros.ros.conversions")
_sensor_msgs = require_ros("sensor_msgs.msg", "gps_ros.ros.conversions")
_builtin = require_ros("builtin_interfaces.msg", "gps_ros.ros.conversions")

NANOSECONDS = 1_000_000_000


def flat_to_array(name: str, values: Sequence[float], shape: Sequence[int]) -> np.ndarray:
    """Reshape a flat message array to ``shape`` (row-major), checking its length and finiteness."""
    arr = np.asarray(values, dtype=np.float64)
    expected = int(np.prod(shape))
    if arr.ndim != 1 or arr.size != expected:
        dims = "x".join(str(s) for s in shape)
        raise ValueError(f"{name}: expected {expected} values (shape [{dims}] row-major), got {arr.size}")
    return check_array(name, arr.reshape(tuple(shape)))


def array_to_flat(name: str, array: np.ndarray, shape: Sequence[int | None] | None = None) -> np.ndarray:
    """Check ``array`` (shape and finiteness) and flatten it row-major for a message field."""
    return np.ascontiguousarray(check_array(name, array, shape)).reshape(-1)


def _dim(name: str, value: int, low: int = 1) -> int:
    if int(value) < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
    return int(value)


# --- time -------------------------------------------------------------------------------

def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * NANOSECONDS + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    sec, nanosec = divmod(int(ns), NANOSECONDS)
    return _builtin.Time(sec=sec, nanosec=nanosec)


# --- images -----------------------------------------------------------------------------

def image_to_msg(image: np.ndarray, stamp_ns: int = 0, frame_id: str = "camera"):
    """RGB image [H, W, 3] uint8 -> sensor_msgs/Image (encoding rgb8)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image: expected uint8 array of shape [H, W, 3], got {img.dtype} {list(img.shape)}")
    msg = _sensor_msgs.Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", step=3 * img.shape[1])
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = np.ascontiguousarray(img).tobytes()
    return msg


def image_from_msg(msg, name: str = "image") -> np.ndarray:
    """sensor_msgs/Image (rgb8 or bgr8) -> RGB [H, W, 3] uint8."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"{name}.encoding: expected 'rgb8' or 'bgr8', got {msg.encoding!r}")
    if msg.step != 3 * msg.width or len(msg.data) != msg.height * msg.step:
        raise ValueError(
            f"{name}.data: expected {msg.height} rows of {3 * msg.width} bytes, got step {msg.step} "
            f"and {len(msg.data)} bytes"
        )
    img = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)
    return img[:, :, ::-1].copy() if msg.encoding == "bgr8" else img.copy()


# --- layouts ----------------------------------------------------------------------------

def layout_to_msgs(slices: Mapping[str, slice]) -> list:
    return [_msgs.SensorSlice(name=k, offset=s.start, size=s.stop - s.start) for k, s in slices.items()]


def layout_from_msgs(name: str, items: Sequence, dim: int) -> dict[str, slice]:
    slices: dict[str, slice] = {}
    for i, item in enumerate(items):
        if item.size == 0 or item.offset + item.size > dim:
            raise ValueError(f"{name}[{i}] ({item.name!r}): expected a slice within [0, {dim}), got offset "
                             f"{item.offset} size {item.size}")
        if item.name in slices:
            raise ValueError(f"{name}[{i}]: name {item.name!r} appears twice")
        slices[item.name] = slice(item.offset, item.offset + item.size)
    return slices


# --- linear-Gaussian policy -------------------------------------------------------------

@dataclass(frozen=True)
class LinearGaussianCommand:
    """A linear-Gaussian controller as carried by a trial request.

    K: [T, dU, dX]; k: [T, dU]; cov: [T, dU, dU] or None when the noise is folded into k;
    noise_seed / noise_smoothing: how the controller draws eps when cov is given.
    """

    K: np.ndarray
    k: np.ndarray
    cov: np.ndarray | None = None
    noise_seed: int = 0
    noise_smoothing: float = 0.0


def linear_gaussian_to_msg(cmd: LinearGaussianCommand):
    K = check_array("linear_gaussian.gains", cmd.K, (None, None, None))
    T, dU, dX = K.shape
    msg = _msgs.LinearGaussianPolicy(horizon=T, dim_x=dX, dim_u=dU)
    msg.gains = array_to_flat("linear_gaussian.gains", K)
    msg.bias = array_to_flat("linear_gaussian.bias", cmd.k, (T, dU))
    if cmd.cov is None:
        msg.noise_mode = _msgs.LinearGaussianPolicy.NOISE_FOLDED
    else:
        check_positive_definite("linear_gaussian.covariance", check_array("linear_gaussian.covariance", cmd.cov, (T, dU, dU)))
        msg.noise_mode = _msgs.LinearGaussianPolicy.NOISE_FROM_SEED
        msg.covariance = array_to_flat("linear_gaussian.covariance", cmd.cov)
        msg.noise_seed = int(cmd.noise_seed)
        msg.noise_smoothing = _non_negative("linear_gaussian.noise_smoothing", cmd.noise_smoothing)
    return msg


def linear_gaussian_from_msg(msg, name: str = "linear_gaussian") -> LinearGaussianCommand:
    T = _dim(f"{name}.horizon", msg.horizon)
    dX = _dim(f"{name}.dim_x", msg.dim_x)
    dU = _dim(f"{name}.dim_u", msg.dim_u)
    K = flat_to_array(f"{name}.gains", msg.gains, (T, dU, dX))
    k = flat_to_array(f"{name}.bias", msg.bias, (T, dU))
    if msg.noise_mode == _msgs.LinearGaussianPolicy.NOISE_FOLDED:
        if len(msg.covariance):
            raise ValueError(f"{name}.covariance: expected empty with NOISE_FOLDED, got {len(msg.covariance)} values")
        return LinearGaussianCommand(K, k)
    if msg.noise_mode != _msgs.LinearGaussianPolicy.NOISE_FROM_SEED:
        raise ValueError(f"{name}.noise_mode: expected NOISE_FOLDED (0) or NOISE_FROM_SEED (1), got {msg.noise_mode}")
    cov = flat_to_array(f"{name}.covariance", msg.covariance, (T, dU, dU))
    check_positive_definite(f"{name}.covariance", cov)
    smoothing = _non_negative(f"{name}.noise_smoothing", msg.noise_smoothing)
    return LinearGaussianCommand(K, k, cov, int(msg.noise_seed), smoothing)


def _non_negative(name: str, value: float) -> float:
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return float(value)


# --- neural policy ----------------------------------------------------------------------

@dataclass(frozen=True)
class NeuralCommand:
    """A neural policy as carried by a trial request.

    architecture: the network description (JSON object); parameters: ordered
    name -> float32 array (flattened in the message); obs_mean / obs_std: [dO];
    covariance: [dU, dU]; noise: [T, dU] or None for a deterministic policy.
    """

    architecture: Mapping
    parameters: Mapping[str, np.ndarray]
    obs_mean: np.ndarray
    obs_std: np.ndarray
    covariance: np.ndarray
    noise: np.ndarray | None = None


def neural_to_msg(cmd: NeuralCommand):
    dO = check_array("neural.obs_mean", cmd.obs_mean, (None,)).shape[0]
    dU = check_array("neural.covariance", cmd.covariance, (None, None)).shape[0]
    msg = _msgs.NeuralPolicy(architecture_json=json.dumps(dict(cmd.architecture)), dim_obs=dO, dim_u=dU)
    msg.parameter_names = list(cmd.parameters)
    flat = [check_array(f"neural.parameters[{n!r}]", p, dtype=np.float32).reshape(-1) for n, p in cmd.parameters.items()]
    msg.parameter_sizes = [int(p.size) for p in flat]
    msg.parameters = np.concatenate(flat) if flat else np.zeros(0, dtype=np.float32)
    msg.obs_mean = array_to_flat("neural.obs_mean", cmd.obs_mean, (dO,))
    msg.obs_std = array_to_flat("neural.obs_std", _positive_std("neural.obs_std", cmd.obs_std, dO), (dO,))
    check_positive_definite("neural.covariance", check_array("neural.covariance", cmd.covariance, (dU, dU)))
    msg.covariance = array_to_flat("neural.covariance", cmd.covariance, (dU, dU))
    if cmd.noise is not None:
        msg.noise = array_to_flat("neural.noise", cmd.noise, (None, dU))
    return msg


def neural_from_msg(msg, horizon: int, name: str = "neural") -> NeuralCommand:
    """``horizon``: the trial's T, which the noise (if any) must cover."""
    try:
        architecture = json.loads(msg.architecture_json)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}.architecture_json: expected a JSON object, got invalid JSON ({err})") from None
    if not isinstance(architecture, dict):
        raise ValueError(f"{name}.architecture_json: expected a JSON object, got {type(architecture).__name__}")
    dO = _dim(f"{name}.dim_obs", msg.dim_obs)
    dU = _dim(f"{name}.dim_u", msg.dim_u)
    if len(msg.parameter_names) != len(msg.parameter_sizes):
        raise ValueError(f"{name}.parameter_sizes: expected one size per name ({len(msg.parameter_names)}), "
                         f"got {len(msg.parameter_sizes)}")
    seen: set[str] = set()
    for pname in msg.parameter_names:
        if pname in seen:
            raise ValueError(f"{name}.parameter_names: expected distinct names, got {pname!r} more than once")
        seen.add(pname)
    flat = np.asarray(msg.parameters, dtype=np.float32)
    if flat.size != sum(msg.parameter_sizes):
        raise ValueError(f"{name}.parameters: expected {sum(msg.parameter_sizes)} values (sum of parameter_sizes), "
                         f"got {flat.size}")
    check_array(f"{name}.parameters", flat, dtype=np.float32)
    bounds = np.cumsum([0, *msg.parameter_sizes])
    params = {n: flat[a:b].copy() for n, a, b in zip(msg.parameter_names, bounds[:-1], bounds[1:])}
    obs_mean = flat_to_array(f"{name}.obs_mean", msg.obs_mean, (dO,))
    obs_std = _positive_std(f"{name}.obs_std", flat_to_array(f"{name}.obs_std", msg.obs_std, (dO,)), dO)
    cov = flat_to_array(f"{name}.covariance", msg.covariance, (dU, dU))
    check_positive_definite(f"{name}.covariance", cov)
    noise = flat_to_array(f"{name}.noise", msg.noise, (horizon, dU)) if len(msg.noise) else None
    return NeuralCommand(architecture, params, obs_mean, obs_std, cov, noise)


def _positive_std(name: str, std: np.ndarray, dim: int) -> np.ndarray:
    arr = check_array(name, std, (dim,))
    if np.any(arr <= 0):
        raise ValueError(f"{name}: expected all entries > 0, got {arr.min()} at index {int(arr.argmin())}")
    return arr


# --- per-step stream and samples --------------------------------------------------------

@dataclass(frozen=True)
class TrialStepData:
    """One step from the controller. state [dX], action [dU], noise [dU], observation [dO]."""

    trial_id: int
    condition: int
    step: int
    horizon: int
    stamp_ns: int
    state: np.ndarray
    action: np.ndarray
    noise: np.ndarray
    observation: np.ndarray
    image: np.ndarray | None = None


def trial_step_to_msg(data: TrialStepData):
    msg = _msgs.TrialStep(trial_id=int(data.trial_id), condition=int(data.condition), step=int(data.step),
                          horizon=int(data.horizon))
    msg.header.stamp = ns_to_stamp(data.stamp_ns)
    msg.state = array_to_flat("trial_step.state", data.state, (None,))
    action = array_to_flat("trial_step.action", data.action, (None,))
    msg.action = action
    msg.noise = array_to_flat("trial_step.noise", data.noise, (action.size,))
    msg.observation = array_to_flat("trial_step.observation", data.observation, (None,))
    if data.image is not None:
        msg.image = image_to_msg(data.image, data.stamp_ns)
    return msg


def trial_step_from_msg(msg, dims: tuple[int, int, int] | None = None) -> TrialStepData:
    """``dims``: the (dX, dU, dO) the receiver expects; checked when given."""
    if msg.step >= msg.horizon:
        raise ValueError(f"trial_step.step: expected 0 <= step < horizon = {msg.horizon}, got {msg.step}")
    state = check_array("trial_step.state", msg.state, (None if dims is None else dims[0],))
    action = check_array("trial_step.action", msg.action, (None if dims is None else dims[1],))
    noise = check_array("trial_step.noise", msg.noise, (action.shape[0],))
    obs = check_array("trial_step.observation", msg.observation, (None if dims is None else dims[2],))
    image = image_from_msg(msg.image, "trial_step.image") if msg.image.height and msg.image.width else None
    return TrialStepData(int(msg.trial_id), int(msg.condition), int(msg.step), int(msg.horizon),
                         stamp_to_ns(msg.header.stamp), state, action, noise, obs, image)


def sample_to_msg(record: TrialRecord):
    s = record.sample
    msg = _msgs.Sample(trial_id=int(record.trial_id), condition=int(record.condition), horizon=int(record.horizon),
                       steps_completed=s.T, dim_x=s.dX, dim_u=s.dU, dim_obs=s.dO)
    msg.state_layout = layout_to_msgs(s.state_slices)
    msg.observation_layout = layout_to_msgs(s.obs_slices)
    msg.states = s.X[0].reshape(-1)
    msg.actions = s.U[0].reshape(-1)
    msg.noise = s.noise[0].reshape(-1)
    msg.observations = s.obs[0].reshape(-1)
    msg.stamps = [ns_to_stamp(ns) for ns in record.stamps_ns]
    if record.stamps_ns.size:
        msg.header.stamp = ns_to_stamp(record.stamps_ns[-1])
    if "image" in s.extras:
        msg.images = [image_to_msg(img, ns) for img, ns in zip(s.extras["image"][0], record.stamps_ns)]
    msg.status = _msgs.Sample.STATUS_COMPLETE if record.status == TRIAL_COMPLETE else _msgs.Sample.STATUS_ABORTED
    msg.abort_reason = record.abort_reason
    return msg


def sample_from_msg(msg) -> TrialRecord:
    T = _dim("sample.steps_completed", msg.steps_completed)
    dX, dU, dO = (_dim(f"sample.{f}", getattr(msg, f)) for f in ("dim_x", "dim_u", "dim_obs"))
    X = flat_to_array("sample.states", msg.states, (T, dX))
    U = flat_to_array("sample.actions", msg.actions, (T, dU))
    noise = flat_to_array("sample.noise", msg.noise, (T, dU))
    obs = flat_to_array("sample.observations", msg.observations, (T, dO))
    if len(msg.stamps) != T:
        raise ValueError(f"sample.stamps: expected {T} stamps (one per step), got {len(msg.stamps)}")
    extras = {}
    if len(msg.images):
        if len(msg.images) != T:
            raise ValueError(f"sample.images: expected 0 or {T} images (one per step), got {len(msg.images)}")
        extras["image"] = np.stack([image_from_msg(im, f"sample.images[{i}]") for i, im in enumerate(msg.images)])[None]
    if msg.status not in (_msgs.Sample.STATUS_COMPLETE, _msgs.Sample.STATUS_ABORTED):
        raise ValueError(f"sample.status: expected STATUS_COMPLETE (0) or STATUS_ABORTED (1), got {msg.status}")
    batch = SampleBatch(X[None], U[None], obs[None], noise[None],
                        layout_from_msgs("sample.state_layout", msg.state_layout, dX),
                        layout_from_msgs("sample.observation_layout", msg.observation_layout, dO), extras)
    status = TRIAL_COMPLETE if msg.status == _msgs.Sample.STATUS_COMPLETE else TRIAL_ABORTED
    stamps = np.array([stamp_to_ns(s) for s in msg.stamps], dtype=np.int64)
    return TrialRecord(int(msg.trial_id), int(msg.condition), int(msg.horizon), batch, stamps, status, msg.abort_reason)


# --- joint states -----------------------------------------------------------------------

def joint_state_to_arrays(msg, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """sensor_msgs/JointState -> (positions [n], velocities [n]) in the order of ``joint_names``."""
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [n for n in joint_names if n not in index]
    if missing:
        raise ValueError(f"joint_state.name: expected joints {list(joint_names)}, missing {missing}")
    if len(msg.position) != len(msg.name) or len(msg.velocity) != len(msg.name):
        raise ValueError(f"joint_state: expected position and velocity for each of {len(msg.name)} names, got "
                         f"{len(msg.position)} positions and {len(msg.velocity)} velocities")
    order = [index[n] for n in joint_names]
    pos = check_array("joint_state.position", np.asarray(msg.position)[order])
    vel = check_array("joint_state.velocity", np.asarray(msg.velocity)[order])
    return pos, vel


__all__ = [
    "LinearGaussianCommand", "NeuralCommand", "TrialStepData", "array_to_flat", "flat_to_array", "image_from_msg",
    "image_to_msg", "joint_state_to_arrays", "layout_from_msgs", "layout_to_msgs", "linear_gaussian_from_msg",
    "linear_gaussian_to_msg", "neural_from_msg", "neural_to_msg", "ns_to_stamp", "sample_from_msg", "sample_to_msg",
    "stamp_to_ns", "trial_step_from_msg", "trial_step_to_msg",
]
