"""Atomic file writing: a temp file in the target's folder, renamed over the target when
complete, so an interrupted writer never leaves half a file under the real name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", fsync: bool = True) -> Iterator[IO]:
    """Open a hidden temp file next to ``path`` (mode "w" or "wb"), yield the stream, then
    flush, optionally fsync, and ``os.replace`` it onto ``path``. On any error the temp file
    is removed and the target is left as it was. Creates the parent folder."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; written files are for the user
        with os.fdopen(fd, mode) as stream:
            yield stream
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
