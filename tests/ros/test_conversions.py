"""numpy <-> message conversions: exact round trips, and clear refusals of malformed input."""

import numpy as np
import pytest

from gps_ros.core.samples import TRIAL_ABORTED, SampleBatch, TrialRecord
from gps_ros.ros import conversions as cv

RNG = np.random.default_rng(0)
T, dX, dU, dO = 6, 5, 3, 4


def random_cov(n_time, d):
    A = RNG.standard_normal((n_time, d, d))
    return A @ np.swapaxes(A, 1, 2) + d * np.eye(d)


def random_record(images=False, status="complete", steps=T):
    extras = {"image": RNG.integers(0, 256, (1, steps, 8, 10, 3), dtype=np.uint8)} if images else {}
    batch = SampleBatch(
        RNG.standard_normal((1, steps, dX)), RNG.standard_normal((1, steps, dU)), RNG.standard_normal((1, steps, dO)),
        RNG.standard_normal((1, steps, dU)), {"q": slice(0, 2), "qd": slice(2, 5)}, {"q": slice(0, 2), "p": slice(2, 4)},
        extras,
    )
    stamps = np.cumsum(RNG.integers(1, 10**9, steps)).astype(np.int64) + 1_700_000_000 * 10**9
    return TrialRecord(42, 3, T, batch, stamps, status, "" if status == "complete" else "watchdog: stale joint states")


@pytest.mark.parametrize("images", [False, True])
def test_sample_round_trip_is_exact(images):
    rec = random_record(images)
    back = cv.sample_from_msg(cv.sample_to_msg(rec))
    assert (back.trial_id, back.condition, back.horizon, back.status) == (42, 3, T, "complete")
    for f in ("X", "U", "obs", "noise"):
        np.testing.assert_array_equal(getattr(back.sample, f), getattr(rec.sample, f))
    np.testing.assert_array_equal(back.stamps_ns, rec.stamps_ns)
    assert back.sample.state_slices == rec.sample.state_slices
    assert back.sample.obs_slices == rec.sample.obs_slices
    if images:
        np.testing.assert_array_equal(back.sample.extras["image"], rec.sample.extras["image"])


def test_aborted_sample_keeps_reason_and_partial_steps():
    rec = random_record(status=TRIAL_ABORTED, steps=4)
    back = cv.sample_from_msg(cv.sample_to_msg(rec))
    assert back.status == TRIAL_ABORTED and back.abort_reason == rec.abort_reason
    assert back.sample.T == 4 and back.horizon == T


def test_sample_wrong_length_names_the_field():
    msg = cv.sample_to_msg(random_record())
    msg.actions = list(msg.actions)[:-1]
    with pytest.raises(ValueError, match=r"sample\.actions: expected 18 values \(shape \[6x3\]"):
        cv.sample_from_msg(msg)


def test_sample_non_finite_names_field_and_index():
    msg = cv.sample_to_msg(random_record())
    states = np.array(msg.states)
    states[7] = np.nan
    msg.states = states
    with pytest.raises(ValueError, match=r"sample\.states: expected finite values, got nan at index \(1, 2\)"):
        cv.sample_from_msg(msg)


def test_sample_layout_outside_state_is_refused():
    msg = cv.sample_to_msg(random_record())
    msg.state_layout[1].size = 9
    with pytest.raises(ValueError, match=r"sample\.state_layout\[1\] \('qd'\)"):
        cv.sample_from_msg(msg)


@pytest.mark.parametrize("with_cov", [False, True])
def test_linear_gaussian_round_trip_is_exact(with_cov):
    cmd = cv.LinearGaussianCommand(
        RNG.standard_normal((T, dU, dX)), RNG.standard_normal((T, dU)),
        random_cov(T, dU) if with_cov else None, noise_seed=123456789012, noise_smoothing=1.5 if with_cov else 0.0,
    )
    back = cv.linear_gaussian_from_msg(cv.linear_gaussian_to_msg(cmd))
    np.testing.assert_array_equal(back.K, cmd.K)
    np.testing.assert_array_equal(back.k, cmd.k)
    if with_cov:
        np.testing.assert_array_equal(back.cov, cmd.cov)
        assert back.noise_seed == cmd.noise_seed and back.noise_smoothing == 1.5
    else:
        assert back.cov is None


def test_linear_gaussian_rejects_bad_shapes_values_and_covariance():
    msg = cv.linear_gaussian_to_msg(cv.LinearGaussianCommand(np.zeros((T, dU, dX)), np.zeros((T, dU)), random_cov(T, dU)))
    msg.dim_x = dX + 1
    with pytest.raises(ValueError, match=r"linear_gaussian\.gains: expected 108 values"):
        cv.linear_gaussian_from_msg(msg)
    msg.dim_x = dX
    gains = np.array(msg.gains)
    gains[0] = np.inf
    msg.gains = gains
    with pytest.raises(ValueError, match=r"linear_gaussian\.gains: expected finite values"):
        cv.linear_gaussian_from_msg(msg)
    msg.gains = np.zeros(T * dU * dX)
    cov = -np.array(msg.covariance)
    msg.covariance = cov
    with pytest.raises(ValueError, match=r"linear_gaussian\.covariance: expected positive-definite"):
        cv.linear_gaussian_from_msg(msg)
    with pytest.raises(ValueError, match=r"linear_gaussian\.bias: expected shape \[6, 3\], got \[6, 2\]"):
        cv.linear_gaussian_to_msg(cv.LinearGaussianCommand(np.zeros((T, dU, dX)), np.zeros((T, 2))))
    msg.noise_mode = 7
    with pytest.raises(ValueError, match=r"linear_gaussian\.noise_mode"):
        cv.linear_gaussian_from_msg(msg)


def test_neural_round_trip_is_exact_and_checks_dimensions():
    params = {"fc0.weight": RNG.standard_normal((8, dO)).astype(np.float32), "fc0.bias": np.zeros(8, np.float32)}
    cmd = cv.NeuralCommand({"kind": "mlp", "hidden": [8]}, params, RNG.standard_normal(dO), RNG.uniform(0.5, 2, dO),
                           random_cov(1, dU)[0], RNG.standard_normal((T, dU)))
    back = cv.neural_from_msg(cv.neural_to_msg(cmd), horizon=T)
    assert back.architecture == cmd.architecture
    assert list(back.parameters) == list(params)
    for name, p in params.items():
        np.testing.assert_array_equal(back.parameters[name].reshape(p.shape), p)
    for f in ("obs_mean", "obs_std", "covariance", "noise"):
        np.testing.assert_array_equal(getattr(back, f), getattr(cmd, f))
    with pytest.raises(ValueError, match=r"neural\.noise: expected 21 values"):
        cv.neural_from_msg(cv.neural_to_msg(cmd), horizon=T + 1)
    bad = cv.neural_to_msg(cmd)
    bad.obs_std = np.zeros(dO)
    with pytest.raises(ValueError, match=r"neural\.obs_std: expected all entries > 0"):
        cv.neural_from_msg(bad, horizon=T)
    bad = cv.neural_to_msg(cmd)
    bad.architecture_json = "{not json"
    with pytest.raises(ValueError, match=r"neural\.architecture_json"):
        cv.neural_from_msg(bad, horizon=T)


def test_neural_duplicate_parameter_names_are_refused():
    params = {"fc0.weight": np.ones((2, dO), np.float32), "fc0.bias": np.zeros(2, np.float32)}
    cmd = cv.NeuralCommand({"kind": "mlp", "hidden": [2]}, params, np.zeros(dO), np.ones(dO), np.eye(dU), None)
    msg = cv.neural_to_msg(cmd)
    msg.parameter_names = ["fc0.weight", "fc0.weight"]
    msg.parameter_sizes = [2 * dO, 2]
    with pytest.raises(ValueError, match=r"neural\.parameter_names: .*'fc0\.weight'"):
        cv.neural_from_msg(msg, horizon=T)


def test_trial_step_round_trip_and_dimension_check():
    img = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    data = cv.TrialStepData(9, 1, 2, T, 123_456_789_012, RNG.standard_normal(dX), RNG.standard_normal(dU),
                            RNG.standard_normal(dU), RNG.standard_normal(dO), img)
    back = cv.trial_step_from_msg(cv.trial_step_to_msg(data), dims=(dX, dU, dO))
    for f in ("state", "action", "noise", "observation", "image"):
        np.testing.assert_array_equal(getattr(back, f), getattr(data, f))
    assert (back.trial_id, back.step, back.stamp_ns) == (9, 2, 123_456_789_012)
    with pytest.raises(ValueError, match=r"trial_step\.state: expected shape \[6\], got \[5\]"):
        cv.trial_step_from_msg(cv.trial_step_to_msg(data), dims=(dX + 1, dU, dO))
    with pytest.raises(ValueError, match=r"trial_step\.noise: expected shape \[3\], got \[2\]"):
        cv.trial_step_to_msg(cv.TrialStepData(9, 1, 2, T, 0, np.zeros(dX), np.zeros(dU), np.zeros(2), np.zeros(dO)))


def test_image_bgr_is_converted_and_bad_sizes_refused():
    img = RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    msg = cv.image_to_msg(img)
    msg.encoding = "bgr8"
    np.testing.assert_array_equal(cv.image_from_msg(msg), img[:, :, ::-1])
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ValueError, match=r"image\.data: expected 3 rows of 12 bytes"):
        cv.image_from_msg(msg)
    with pytest.raises(ValueError, match=r"image: expected uint8 array of shape \[H, W, 3\]"):
        cv.image_to_msg(img.astype(np.float32))


def test_joint_state_reordered_by_name_and_missing_joint_named():
    from sensor_msgs.msg import JointState

    msg = JointState(name=["b", "a", "c"], position=[2.0, 1.0, 3.0], velocity=[20.0, 10.0, 30.0])
    pos, vel = cv.joint_state_to_arrays(msg, ["a", "b", "c"])
    np.testing.assert_array_equal(pos, [1, 2, 3])
    np.testing.assert_array_equal(vel, [10, 20, 30])
    with pytest.raises(ValueError, match=r"missing \['d'\]"):
        cv.joint_state_to_arrays(msg, ["a", "d"])
