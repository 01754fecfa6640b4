"""Durable JSON files and the state lock.

Records are written whole to a temporary file, fsynced and renamed over the
old one, then the directory is fsynced, so a crash leaves the old or the new
record, never half of one.  One lock file serialises every change to network
state between threads (each holder opens its own file description, and flock
locks belong to the description) and between processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..util.fileio import fsync_dir, write_json_atomic


def write_json(path: Path, obj: Any) -> None:
    """Atomically replace PATH with OBJ as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, obj, sort_keys=True)


def read_json(path: Path) -> Any:
    """The JSON in PATH, or None when there is no such file."""
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def remove(path: Path) -> bool:
    """Unlink PATH durably; False when it was already gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


class StateLock:
    """An exclusive lock for threads of this process and for other processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # flock alone would do; the thread lock keeps waiting threads out of the
        # kernel and lets us assert that no code path takes the lock twice.
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the body of a with statement."""
        with self._thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
