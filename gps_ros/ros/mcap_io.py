"""Recorded trials as MCAP files that ``ros2 bag`` and Foxglove read.

One file per trial: profile ``ros2``; every channel has a ``ros2msg`` schema (the .msg
definition with its dependencies concatenated, as rosbag2 stores it) and ``cdr``
message encoding (``rclpy.serialization`` bytes). The file holds the controller's
TrialStep stream (when given) and one ``gps_ros/msg/Sample``: the assembled trial.
Files are written to a temp file in the target folder and renamed into place, so a
folder never holds a half-written ``*.mcap``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from gps_ros.atomic_io import atomic_write
from gps_ros.core.samples import TrialRecord
from gps_ros.ros import require_ros
from gps_ros.ros.conversions import sample_from_msg, sample_to_msg, stamp_to_ns
from gps_ros.ros.interfaces import RECORDED_SAMPLES, TRIAL_STEPS

_serialization = require_ros("rclpy.serialization", "gps_ros.ros.mcap_io")
_ament = require_ros("ament_index_python.packages", "gps_ros.ros.mcap_io")
_msgs = require_ros("gps_ros.msg", "gps_ros.ros.mcap_io")

PROFILE = "ros2"
SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
SAMPLE_TYPE = "gps_ros/msg/Sample"
TRIAL_STEP_TYPE = "gps_ros/msg/TrialStep"
DELIMITER = "=" * 80
SUFFIX = ".mcap"

# rosbag2's YAML form of the QoS the topics are offered with (rmw enum values: keep-last 1,
# reliable 1, volatile 2, automatic liveliness 1; zero durations mean "default"); the
# ros2 profile requires it, and `ros2 bag play` republishes with it.
_NO_DURATION = {"sec": 0, "nsec": 0}
OFFERED_QOS = [{
    "history": 1, "depth": 100, "reliability": 1, "durability": 2, "deadline": _NO_DURATION, "lifespan": _NO_DURATION,
    "liveliness": 1, "liveliness_lease_duration": _NO_DURATION, "avoid_ros_namespace_conventions": False,
}]

_PRIMITIVES = frozenset(
    "bool byte char float32 float64 int8 uint8 int16 uint16 int32 uint32 int64 uint64 string wstring".split()
)
_FIELD_TYPE = re.compile(r"^([A-Za-z0-9_/]+)")


def type_name(msg_or_type: object) -> str:
    """``pkg/msg/Name`` of a generated message (instance or class)."""
    cls = msg_or_type if isinstance(msg_or_type, type) else type(msg_or_type)
    package, kind = cls.__module__.split(".")[:2]
    return f"{package}/{kind}/{cls.__name__}"


def _split(name: str, package: str | None = None) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) == 1 and package is not None:
        return package, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    raise ValueError(f"type name: expected 'pkg/msg/Name' or 'pkg/Name', got {name!r}")


@lru_cache(maxsize=None)
def _msg_text(package: str, name: str) -> str:
    path = Path(_ament.get_package_share_directory(package)) / "msg" / f"{name}.msg"
    return path.read_text()


def _field_types(text: str, package: str) -> list[tuple[str, str]]:
    """(package, name) of every non-primitive field type in a .msg text, in order."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = _FIELD_TYPE.match(line)
        if not match or len(line.split()) < 2 or match.group(1) in _PRIMITIVES:
            continue
        found.append(_split(match.group(1), package))
    return found


@lru_cache(maxsize=None)
def message_definition(name: str) -> str:
    """The complete ``ros2msg`` definition of ``name`` (``pkg/msg/Name``): its .msg text,
    then each dependency (depth-first, once) after an 80-``=`` line and ``MSG: pkg/msg/Name``."""
    root = _split(name)
    blocks = [_msg_text(*root).rstrip("\n")]
    seen = {root}
    stack = list(reversed(_field_types(_msg_text(*root), root[0])))
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        text = _msg_text(*dep)
        blocks.append(f"{DELIMITER}\nMSG: {dep[0]}/msg/{dep[1]}\n{text.rstrip(chr(10))}")
        stack.extend(reversed(_field_types(text, dep[0])))
    return "\n".join(blocks) + "\n"


def trial_filename(record: TrialRecord) -> str:
    return f"trial_{record.trial_id:010d}{SUFFIX}"


def write_trial(
    path: str | os.PathLike,
    record: TrialRecord,
    steps: Sequence = (),
    sample_topic: str = "/" + RECORDED_SAMPLES,
    step_topic: str = "/" + TRIAL_STEPS,
) -> Path:
    """Write ``record`` (as a Sample message) and the TrialStep messages ``steps`` to the MCAP
    file ``path``, atomically. Step messages are logged at their header stamps, the sample
    at its last stamp."""
    sample = sample_to_msg(record)
    target = Path(path)
    with atomic_write(target, "wb") as stream:
        _write(stream, sample, steps, sample_topic, step_topic)
    return target


def _write(stream, sample, steps: Sequence, sample_topic: str, step_topic: str) -> None:
    import yaml
    from mcap.writer import Writer

    writer = Writer(stream)
    writer.start(profile=PROFILE, library="gps_ros")
    metadata = {"offered_qos_profiles": yaml.safe_dump(OFFERED_QOS, sort_keys=False)}
    channels = {}
    for topic, name in ((step_topic, TRIAL_STEP_TYPE), (sample_topic, SAMPLE_TYPE)):
        if name == TRIAL_STEP_TYPE and not steps:
            continue
        schema = writer.register_schema(name=name, encoding=SCHEMA_ENCODING, data=message_definition(name).encode())
        channels[name] = writer.register_channel(topic=topic, message_encoding=MESSAGE_ENCODING, schema_id=schema,
                                                 metadata=metadata)
    for sequence, step in enumerate(steps):
        if type_name(step) != TRIAL_STEP_TYPE:
            raise ValueError(f"steps[{sequence}]: expected {TRIAL_STEP_TYPE}, got {type_name(step)}")
        ns = stamp_to_ns(step.header.stamp)
        writer.add_message(channels[TRIAL_STEP_TYPE], ns, _serialization.serialize_message(step), ns, sequence)
    ns = stamp_to_ns(sample.header.stamp)
    writer.add_message(channels[SAMPLE_TYPE], ns, _serialization.serialize_message(sample), ns, 0)
    writer.finish()


def _messages(path: Path, name: str) -> list:
    from mcap.reader import make_reader

    cls = _msgs.Sample if name == SAMPLE_TYPE else _msgs.TrialStep
    try:
        with open(path, "rb") as stream:
            return [
                _serialization.deserialize_message(message.data, cls)
                for schema, _, message in make_reader(stream).iter_messages(log_time_order=False)
                if schema is not None and schema.name == name
            ]
    except Exception as err:
        raise ValueError(f"path: expected a readable gps_ros trial MCAP file, got {path} ({err})") from err


def read_trial(path: str | os.PathLike) -> TrialRecord:
    """The Sample stored in one trial file."""
    samples = _messages(Path(path), SAMPLE_TYPE)
    if len(samples) != 1:
        raise ValueError(f"path: expected exactly one {SAMPLE_TYPE} message in {path}, got {len(samples)}")
    return sample_from_msg(samples[0])


def read_steps(path: str | os.PathLike) -> list:
    """The TrialStep messages stored in one trial file, in the order they were written."""
    return _messages(Path(path), TRIAL_STEP_TYPE)


def read_samples(directory: str | os.PathLike) -> list[tuple[Path, TrialRecord]]:
    """Every trial file of ``directory`` (complete and aborted), ordered by trial id then
    file name. Temp files of interrupted writes are not trial files and are skipped."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"directory: expected an existing folder of trial files, got {folder}")
    records = [(path, read_trial(path)) for path in sorted(folder.glob(f"*{SUFFIX}")) if not path.name.startswith(".")]
    return sorted(records, key=lambda item: (item[1].trial_id, item[0].name))
