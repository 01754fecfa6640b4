"""The zygote: a single-threaded copy of the warm daemon that forks monitors.

The daemon runs threads (the asyncio executor, D-Bus); forking a threaded
process can copy a lock some other thread held.  So, before it starts any
thread, the daemon imports everything, calls gc.freeze() and forks this
zygote; every monitor is then forked from the zygote, sharing its pages
copy-on-write (a monitor costs under a MiB, a fresh interpreter about ten).

Monitors are double-forked so that they are not our children: systemd moves
them into their scope, and they must survive a daemon restart.  Once its
workload runs, a monitor execs the native supervisor (native/sdc-monitor.c),
so no copy of these pages outlives the start (issue 17).

The native supervisor cannot fork Python cheaply, so it asks us for each exec
session: over monitor.EXEC_SOCKET (root only) it sends the client's connection, its end
of the session's control channel and the spec's memfd, and we fork the session
(runtime/monitor.run_exec_session), which first joins the supervisor's cgroups.
A fork of this warm process takes a millisecond where a fresh interpreter takes
a few hundred (a healthcheck probe pays it every time).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import struct
from typing import NoReturn

# Loaded by the daemon before the zygote's fork, so every monitor shares its pages:
# logsink imports it lazily, for exec sessions' sake (monitor.exec_session_main).
import pystemd.journal  # noqa: F401

from ..errors import SdcError
from ..model.spec import LaunchSpec
from . import cgroups
from . import syscalls as sc
from .launcher import initbin, sandbox

log = logging.getLogger(__name__)

EXEC_REQUEST_TIMEOUT = 1.0  # seconds: a supervisor sends its request as it connects


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


def _spawn_monitor(spec: LaunchSpec, raw: bytes) -> int:
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
                monitor.serve(spec, listener, raw)
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


def _exec_session(peer: int, main_pid: int, conn_fd: int, ctl_fd: int,
                  spec_fd: int) -> NoReturn:
    """In a grandchild: become the exec session the supervisor PEER asked for."""
    from . import monitor

    try:
        # Before anything else: what the session does is the container's, not ours.
        cgroups.join_cgroups_of(peer)
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        sandbox.close_fds(conn_fd, ctl_fd, spec_fd, initbin.fd())
    except BaseException as e:
        with contextlib.suppress(BaseException):
            os.write(conn_fd, json.dumps({"error": f"exec failed: {e}", "code": 126})
                     .encode() + b"\n")
            os.write(ctl_fd, b"exit 126\n")
        os._exit(126)
    monitor.run_exec_session(conn_fd, ctl_fd, spec_fd, main_pid)


def _serve_exec(listener: socket.socket) -> None:
    """Take one supervisor's exec request: "exec MAIN_PID" with three fds (the client's
    connection, the session's control channel, the spec's memfd).  The session is
    double-forked, like a monitor: its supervisor learns its end on the channel."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    fds: list[int] = []
    with conn:
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                    struct.calcsize("3i"))
            peer, uid, _ = struct.unpack("3i", creds)
            conn.settimeout(EXEC_REQUEST_TIMEOUT)  # the zygote must never wedge
            msg, fds, _, _ = socket.recv_fds(conn, 64, 3)
            word, _, main = msg.decode().partition(" ")
            if uid != 0 or word != "exec" or len(fds) != 3:
                return
            main_pid = int(main)
            first = os.fork()
            if first == 0:
                try:
                    if os.fork() == 0:
                        _exec_session(peer, main_pid, *fds)
                finally:
                    os._exit(0)
            os.waitpid(first, 0)
        except (OSError, ValueError) as e:
            log.warning("cannot start an exec session: %s", e)
        finally:
            for fd in fds:
                os.close(fd)


def _serve(sock: socket.socket, listener: socket.socket) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is listener:
                _serve_exec(listener)
                continue
            try:
                data = sock.recv(1 << 20)
            except InterruptedError:
                continue
            if not data:
                os._exit(0)
            answer: dict[str, object]
            try:
                spec = LaunchSpec.load(json.loads(data))
                answer = {"pid": _spawn_monitor(spec, data)}
            except Exception as e:
                answer = {"error": str(e)}
            sock.send(json.dumps(answer).encode())


def _bind_exec_socket() -> socket.socket:
    from .monitor import EXEC_SOCKET

    with contextlib.suppress(FileNotFoundError):
        os.unlink(EXEC_SOCKET)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = os.umask(0o177)
    try:
        listener.bind(str(EXEC_SOCKET))
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


class Zygote:
    """The daemon's handle on the zygote process."""

    def __init__(self, close_fds: tuple[int, ...] = ()) -> None:
        """Fork the zygote; it closes CLOSE_FDS (the daemon's lock must not outlive it)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener = _bind_exec_socket()
        self.pid = os.fork()
        if self.pid == 0:
            parent.close()
            for fd in close_fds:
                os.close(fd)
            try:
                sc.set_process_name("sdc-zygote")  # so admins (and tests) can tell it
                initbin.load()
                _serve(child, listener)
            finally:
                os._exit(0)
        child.close()
        listener.close()
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
