"""Durable container records under STATE_DIR/containers/ID.

One JSON file per container, written atomically (temp file, fsync, rename, so
a crash leaves the old record or the new one) by the daemon, which holds an
exclusive lock on the state directory so that no second daemon writes
beside it.  The monitor writes only `exit.json`, in the container's runtime
directory under /run (not on the state disk, which a container can fill):
the daemon folds it into the record and then removes it, and while the record
cannot be written (a full disk) the file keeps the exit status for a
restarted daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import math
import os
import re
import secrets
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import InvalidArgument, SdcError
from ..model.spec import ContainerConfig, from_dict
from ..util import fileio

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
MAX_NAME = 100  # keeps sdcontainer-NAME.slice, escaped, far below systemd's 255
ZERO_TIME = "0001-01-01T00:00:00Z"


def validate_name(name: str) -> str:
    """Return NAME without docker's optional leading slash, or raise InvalidArgument."""
    bare = name[1:] if name.startswith("/") else name
    if not NAME_RE.fullmatch(bare) or len(bare) > MAX_NAME:
        raise InvalidArgument(
            f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, "
            f"at most {MAX_NAME} characters")
    return bare


def new_id() -> str:
    """A fresh 64-hex container id."""
    return secrets.token_hex(32)


@dataclass
class ContainerState:
    """What happened to a container: changes over its life."""

    status: str = "created"  # created | running | exited | dead
    pid: int = 0  # the workload's PID 1, as the host sees it
    monitor_pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    stop_requested: bool = False
    paused: bool = False  # its scope is frozen (docker's State.Paused); running only
    restart_count: int = 0  # restarts by the restart policy since the last explicit start
    health: dict[str, Any] = field(default_factory=dict)  # docker's State.Health; {} = none

    @classmethod
    def load(cls, data: dict[str, Any]) -> ContainerState:
        """From the JSON form."""
        return from_dict(cls, data)


@dataclass
class Container:
    """A container record."""

    id: str
    name: str
    created: str
    config: ContainerConfig
    state: ContainerState = field(default_factory=ContainerState)
    network: dict[str, Any] = field(default_factory=dict)
    # The name its running scope and slice were made with, when it was renamed since
    # (systemd units cannot be renamed); "" while they carry NAME.  Cleared at its exit.
    unit_name: str = ""

    @property
    def unit_base(self) -> str:
        """The name in its units' names: sdcontainer-UNIT_BASE.scope and .slice."""
        return self.unit_name or self.name

    @property
    def dir(self) -> Path:
        """Its durable directory (upper layer, records)."""
        return paths.CONTAINERS_DIR / self.id

    @property
    def run_dir(self) -> Path:
        """Its runtime directory (control socket, exit file); nothing in it is
        bound into the container, so the container cannot fill /run."""
        return paths.RUN_CONTAINERS_DIR / self.id

    @property
    def exit_file(self) -> Path:
        """Where the monitor records the exit status: on /run, which a full state
        disk cannot stop it from writing (a few hundred bytes)."""
        return self.run_dir / "exit.json"

    @property
    def legacy_exit_file(self) -> Path:
        """Where monitors of earlier versions wrote it (still read after an upgrade)."""
        return self.dir / "exit.json"

    @property
    def control_socket(self) -> Path:
        """The monitor's control socket."""
        return self.run_dir / "monitor.sock"

    @property
    def scope(self) -> str:
        """Its systemd scope unit."""
        return paths.scope_name(self.unit_base)

    @property
    def running(self) -> bool:
        """Whether it has a live workload."""
        return self.state.status == "running"

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Container:
        """From the JSON form."""
        c = from_dict(cls, data)
        c.config = ContainerConfig.load(data["config"])
        c.state = ContainerState.load(data.get("state", {}))
        return c


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace PATH with DATA as JSON, durably and atomically."""
    try:
        fileio.write_json_atomic(path, data)
    except OSError as e:
        raise SdcError(f"cannot write {path}: {e.strerror}") from e


class ContainerStore:
    """The on-disk records of every container."""

    def __init__(self, root: Path = paths.CONTAINERS_DIR) -> None:
        self.root = root
        # Saves run in worker threads and may finish out of order: each carries a
        # sequence number taken when its snapshot was, and an older snapshot arriving
        # after a newer one (or after the record was deleted) is dropped.
        self.seq = itertools.count(1)
        self._written: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _lock_for(self, cid: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(cid, threading.Lock())

    def lock(self) -> int:
        """Take the state directory's exclusive lock for this process's lifetime."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root.parent / "daemon.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(fd)
            raise SdcError(f"another sdcontainerd is using {self.root.parent}") from e
        return fd

    def save(self, c: Container) -> None:
        """Write C's record as it is now (from the thread that owns C)."""
        self.write(c, c.to_json(), next(self.seq))

    def write(self, c: Container, snapshot: dict[str, Any], seq: int) -> None:
        """Write SNAPSHOT, taken with sequence number SEQ, unless a later one is already
        on disk or the record was deleted (a late save must not bring a removed
        container back)."""
        with self._lock_for(c.id):
            if seq <= self._written.get(c.id, 0):
                return
            c.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_json_atomic(c.dir / "container.json", snapshot)
            self._written[c.id] = seq

    def load_all(self) -> list[Container]:
        """Every readable record; corrupt ones are moved aside with an error logged."""
        found: list[Container] = []
        if not self.root.is_dir():
            return found
        for d in sorted(self.root.iterdir()):
            f = d / "container.json"
            if not f.exists():
                continue
            try:
                found.append(Container.load(json.loads(f.read_text())))
            except (ValueError, KeyError, TypeError) as e:
                aside = d.with_name(d.name + ".corrupt")
                log.error("container record %s is corrupt (%s); moved to %s", f, e, aside)
                with contextlib.suppress(OSError):
                    d.rename(aside)
        return found

    def discard_layer(self, c: Container) -> None:
        """Remove C's writable layer (upper and work), the bulk of what it wrote:
        the first step of a removal, so that a container which filled the state
        disk frees it before anything else needs to write."""
        for d in ("upper", "work"):
            shutil.rmtree(c.dir / d, ignore_errors=True)

    def delete(self, c: Container) -> None:
        """Remove C's directories and everything in them (needs no free space)."""
        with self._lock_for(c.id):
            self._written[c.id] = math.inf
            shutil.rmtree(c.dir, ignore_errors=True)
            shutil.rmtree(c.run_dir, ignore_errors=True)


def ensure_dirs() -> None:
    """The daemon's directories: state private to root, runtime readable."""
    for d in (paths.CONTAINERS_DIR, paths.RUN_CONTAINERS_DIR):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.RUN_DIR.chmod(0o755)
