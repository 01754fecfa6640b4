"""The zygote: a single-threaded copy of the warm daemon that forks monitors.

The daemon runs threads (the asyncio executor, D-Bus); forking a threaded
process can copy a lock some other thread held.  So, before it starts any
thread, the daemon imports everything, calls gc.freeze() and forks this
zygote; every monitor is then forked from the zygote, sharing its pages
copy-on-write (a monitor costs under a MiB, a fresh interpreter about ten).

Monitors are double-forked so that they are not our children: systemd moves
them into their scope, and they must survive a daemon restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import struct

from ..errors import SdcError
from ..model.spec import LaunchSpec
from . import syscalls as sc
from .launcher import initbin

log = logging.getLogger(__name__)


def _bind_control_socket(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(16)
    return listener


def _spawn_monitor(spec: LaunchSpec) -> int:
    from . import monitor

    listener = _bind_control_socket(spec.control_socket)
    r, w = os.pipe()
    first = os.fork()
    if first == 0:
        try:
            os.close(r)
            second = os.fork()
            if second == 0:
                os.close(w)
                monitor.serve(spec, listener)
            os.write(w, struct.pack("i", second))
        finally:
            os._exit(0)
    os.close(w)
    listener.close()
    os.waitpid(first, 0)
    data = os.read(r, 4)
    os.close(r)
    if len(data) != 4:
        raise SdcError("the monitor could not be forked")
    pid: int = struct.unpack("i", data)[0]
    return pid


def _serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            data = sock.recv(1 << 20)
        except InterruptedError:
            continue
        if not data:
            os._exit(0)
        answer: dict[str, object]
        try:
            spec = LaunchSpec.load(json.loads(data))
            answer = {"pid": _spawn_monitor(spec)}
        except Exception as e:
            answer = {"error": str(e)}
        sock.send(json.dumps(answer).encode())


class Zygote:
    """The daemon's handle on the zygote process."""

    def __init__(self, close_fds: tuple[int, ...] = ()) -> None:
        """Fork the zygote; it closes CLOSE_FDS (the daemon's lock must not outlive it)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            parent.close()
            for fd in close_fds:
                os.close(fd)
            try:
                sc.set_process_name("sdc-zygote")  # so admins (and tests) can tell it
                initbin.load()
                _serve(child)
            finally:
                os._exit(0)
        child.close()
        self._sock = parent

    def spawn(self, spec: LaunchSpec) -> int:
        """Fork a monitor for SPEC; return its pid.  Not thread-safe: serialise calls."""
        from dataclasses import asdict

        self._sock.send(json.dumps(asdict(spec)).encode())
        answer = json.loads(self._sock.recv(65536) or b'{"error": "the zygote died"}')
        if "error" in answer:
            raise SdcError(f"cannot start the monitor: {answer['error']}")
        return int(answer["pid"])

    def close(self) -> None:
        """Stop the zygote (monitors it forked live on)."""
        self._sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
