"""Durable, atomic JSON files: the one way state is written.

The data goes to a temporary file beside the target (mode 0600), is fsynced,
renamed over the target, and the directory is fsynced: a crash leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(path: Path | str) -> None:
    """Make a rename or unlink in directory PATH durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path | str, data: Any, *, sort_keys: bool = False) -> None:
    """Replace PATH with DATA as JSON, durably and atomically; OSError on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=sort_keys)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def du(path: Path | str, *, blocks: bool = False) -> int:
    """Bytes in the files under PATH, not following symlinks: their sizes, or with
    BLOCKS the disk they take.  Files that vanish during the walk count nothing."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, f))
                total += st.st_blocks * 512 if blocks else st.st_size
    return total
