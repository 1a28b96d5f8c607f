"""Trial MCAP files: exact round trip, and the fields ros2 bag / Foxglove need to decode them."""

import os
import struct

import numpy as np
import pytest
import yaml

from gps_ros.core.samples import TRIAL_ABORTED, TRIAL_COMPLETE, SampleBatch, TrialRecord


def _record(trial_id: int, T: int = 5, horizon: int | None = None, images: bool = False, seed: int = 0) -> TrialRecord:
    rng = np.random.default_rng(seed)
    dX, dU, dO = 4, 2, 3
    extras = {"image": rng.integers(0, 256, (1, T, 6, 5, 3), dtype=np.uint8)} if images else {}
    batch = SampleBatch(rng.standard_normal((1, T, dX)), rng.standard_normal((1, T, dU)), rng.standard_normal((1, T, dO)),
                        rng.standard_normal((1, T, dU)), {"joint_angles": slice(0, 2), "joint_velocities": slice(2, 4)},
                        {"ee": slice(0, 3)}, extras)
    stamps = 1_700_000_000_000_000_000 + np.arange(T, dtype=np.int64) * 50_000_000 + trial_id
    horizon = T if horizon is None else horizon
    status = TRIAL_COMPLETE if horizon == T else TRIAL_ABORTED
    return TrialRecord(trial_id, 3, horizon, batch, stamps, status, "" if status == TRIAL_COMPLETE else "watchdog")


def _steps(record: TrialRecord) -> list:
    from gps_ros.ros.conversions import TrialStepData, trial_step_to_msg

    s = record.sample
    return [trial_step_to_msg(TrialStepData(record.trial_id, record.condition, t, record.horizon, int(record.stamps_ns[t]),
                                            s.X[0, t], s.U[0, t], s.noise[0, t], s.obs[0, t]))
            for t in range(s.T)]


def _assert_same(a: TrialRecord, b: TrialRecord) -> None:
    assert (a.trial_id, a.condition, a.horizon, a.status, a.abort_reason) == (b.trial_id, b.condition, b.horizon, b.status, b.abort_reason)
    for field in ("X", "U", "obs", "noise"):
        np.testing.assert_array_equal(getattr(a.sample, field), getattr(b.sample, field))
    assert a.sample.state_slices == b.sample.state_slices and a.sample.obs_slices == b.sample.obs_slices
    assert set(a.sample.extras) == set(b.sample.extras)
    for key in a.sample.extras:
        np.testing.assert_array_equal(a.sample.extras[key], b.sample.extras[key])
    np.testing.assert_array_equal(a.stamps_ns, b.stamps_ns)


def test_round_trip_is_exact_with_images_and_steps(tmp_path):
    from gps_ros.ros.mcap_io import read_steps, read_trial, write_trial

    record = _record(12, images=True)
    steps = _steps(record)
    path = write_trial(tmp_path / "t.mcap", record, steps)
    _assert_same(read_trial(path), record)
    back = read_steps(path)
    assert [m.step for m in back] == list(range(5))
    for a, b in zip(back, steps):
        np.testing.assert_array_equal(a.state, b.state)
        assert a.header.stamp == b.header.stamp
    # nothing but the file itself is left in the folder (the temp file was renamed)
    assert os.listdir(tmp_path) == ["t.mcap"]


def test_read_samples_returns_every_file_in_trial_order_and_skips_temp_files(tmp_path):
    from gps_ros.ros.mcap_io import read_samples, trial_filename, write_trial

    records = [_record(7, seed=1), _record(2, T=3, horizon=5, seed=2), _record(30, seed=3)]
    for r in records:
        write_trial(tmp_path / trial_filename(r), r)
    (tmp_path / ".trial_0000000099.mcap.abc.tmp").write_bytes(b"half written")
    got = read_samples(tmp_path)
    assert [r.trial_id for _, r in got] == [2, 7, 30]
    assert got[0][1].status == TRIAL_ABORTED and got[0][1].abort_reason == "watchdog"
    for (_, r), expected in zip(got, sorted(records, key=lambda r: r.trial_id)):
        _assert_same(r, expected)


def test_unreadable_file_and_missing_folder_raise_naming_the_path(tmp_path):
    from gps_ros.ros.mcap_io import read_samples

    with pytest.raises(ValueError, match="directory: expected an existing folder"):
        read_samples(tmp_path / "nope")
    (tmp_path / "trial_0000000001.mcap").write_bytes(b"not mcap")
    with pytest.raises(ValueError, match="trial_0000000001.mcap"):
        read_samples(tmp_path)


def test_schema_and_encodings_are_what_ros2_bag_expects(tmp_path):
    from mcap.reader import make_reader

    from gps_ros.ros.mcap_io import write_trial

    record = _record(5)
    path = write_trial(tmp_path / "t.mcap", record, _steps(record))
    with open(path, "rb") as f:
        reader = make_reader(f)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
    schemas = {s.name: s for s in summary.schemas.values()}
    assert set(schemas) == {"gps_ros/msg/Sample", "gps_ros/msg/TrialStep"}
    assert {s.encoding for s in schemas.values()} == {"ros2msg"}
    assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
    assert {c.topic for c in summary.channels.values()} == {"/recorded_samples", "/trial_steps"}
    for channel in summary.channels.values():
        (qos,) = yaml.safe_load(channel.metadata["offered_qos_profiles"])
        assert set(qos) == {"history", "depth", "reliability", "durability", "deadline", "lifespan", "liveliness",
                            "liveliness_lease_duration", "avoid_ros_namespace_conventions"}
        assert qos["reliability"] == 1 and qos["deadline"] == {"sec": 0, "nsec": 0}
    text = schemas["gps_ros/msg/Sample"].data.decode()
    blocks = text.split("=" * 80 + "\n")
    # first block: the Sample.msg text itself; then one "MSG: pkg/msg/Name" block per dependency, each once
    assert "uint32 steps_completed" in blocks[0] and not blocks[0].startswith("MSG:")
    deps = [b.splitlines()[0] for b in blocks[1:]]
    assert sorted(deps) == sorted({"MSG: std_msgs/msg/Header", "MSG: builtin_interfaces/msg/Time",
                                   "MSG: gps_ros/msg/SensorSlice", "MSG: sensor_msgs/msg/Image"})
    assert all(len(line) == 80 for line in text.splitlines() if set(line) == {"="})


def test_foxglove_decoder_reads_the_file_from_its_schema_alone(tmp_path):
    """mcap-ros2-support parses the ros2msg schema text and decodes CDR without rclpy types."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from gps_ros.ros.mcap_io import write_trial

    record = _record(9, images=True)
    path = write_trial(tmp_path / "t.mcap", record, _steps(record))
    with open(path, "rb") as f:
        decoded = [(c.topic, m) for _, c, _, m in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages()]
    steps = [m for topic, m in decoded if topic == "/trial_steps"]
    (sample,) = [m for topic, m in decoded if topic == "/recorded_samples"]
    assert [s.step for s in steps] == list(range(5))
    np.testing.assert_array_equal(np.reshape(sample.states, (5, 4)), record.sample.X[0])
    np.testing.assert_array_equal(np.reshape(sample.actions, (5, 2)), record.sample.U[0])
    assert [sl.name for sl in sample.state_layout] == ["joint_angles", "joint_velocities"]
    assert sample.images[2].encoding == "rgb8"
    assert bytes(sample.images[2].data) == record.sample.extras["image"][0, 2].tobytes()
    assert sample.trial_id == 9 and sample.header.stamp.sec * 10**9 + sample.header.stamp.nanosec == record.stamps_ns[-1]


def test_cdr_payload_starts_with_the_little_endian_encapsulation_and_header_stamp(tmp_path):
    from mcap.reader import make_reader

    from gps_ros.ros.mcap_io import write_trial

    record = _record(4)
    path = write_trial(tmp_path / "t.mcap", record)
    with open(path, "rb") as f:
        ((_, channel, message),) = list(make_reader(f).iter_messages())
    # CDR_LE encapsulation id 0x0001, options 0; then Header.stamp: int32 sec, uint32 nanosec
    assert message.data[:4] == b"\x00\x01\x00\x00"
    sec, nanosec = struct.unpack_from("<iI", message.data, 4)
    assert sec * 10**9 + nanosec == record.stamps_ns[-1] == message.log_time
