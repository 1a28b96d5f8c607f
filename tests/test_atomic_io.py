import os
import stat

import pytest

from gps_ros.atomic_io import atomic_write


def test_writes_the_whole_file_readable_by_others_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_write(target, "w") as stream:
        stream.write("{}")
    assert target.read_text() == "{}"
    assert os.listdir(target.parent) == ["out.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_an_error_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target, "wb", fsync=False) as stream:
            stream.write(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_bad_mode_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="mode: expected 'w' or 'wb', got 'a'"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    assert os.listdir(tmp_path) == []
