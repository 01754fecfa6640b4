"""The per-container monitor: the workload's parent, its output's pump, its witness.

Forked from the daemon's zygote (so it costs copy-on-write pages, not a new
interpreter), it is moved into the container's scope by systemd before the
workload exists, so everything it spawns is accounted there and the journal
attributes the output it forwards to the scope.  It:

- waits for the daemon's "go", then forks the workload as PID 1 of a new pid
  namespace, or into the host's or another's (PidMode host, container:NAME; the
  launcher builds the rest of the sandbox);
- pumps stdout/stderr (or a pty) to the journal and to attached clients, in
  docker's stream format;
- runs `exec` sessions inside the container's namespaces, and sends each one's exit
  status to whoever asked for it (`exec_wait`) when it reaps the session's process;
- records the exit status (code, or 128+signal, and whether the kernel's OOM
  killer struck) in a file, so the record survives a daemon restart.

Control is a unix socket; every connection starts with one JSON line.

Once the workload runs, the monitor execve()s the native supervisor
(native/sdc-monitor.c) in this same process, when it is installed: the
workload stays its child, the pipes, pty, clients and control socket are
inherited, and the Python heap is gone (issue 17: a supervisor must cost less
than conmon).  The native loop then forks `python -m sdcontainer.runtime.monitor
exec-session ...` for each exec: `exec_session_main` below, a short-lived copy
of this module that starts the session the way the Python monitor does; or,
while the daemon runs, asks the zygote to fork that session (`run_exec_session`),
which spares each exec and healthcheck probe a fresh interpreter.
SDCONTAINER_MONITOR=python keeps the whole life in Python.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import fcntl
import json
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from .. import paths
from ..model.spec import LaunchSpec
from ..util import fileio
from . import logsink
from . import syscalls as sc
from .launcher import initbin, sandbox, security, userns

log = logging.getLogger(__name__)

# Signals systemd sends to every process of the scope on stop/kill: the monitor
# must outlive the workload to record how it ended.
IGNORED = [s for s in signal.valid_signals()
           if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGCONT)]
CLIENT_TIMEOUT = 10.0
# Under sys.prefix (the checkout's .venv: tools/install-deps), then /usr (packages);
# lib/ for Arch, whose packages keep out of /usr/libexec.
NATIVE_CANDIDATES = ("libexec/sdcontainer/sdc-monitor", "lib/sdcontainer/sdc-monitor")
# The zygote's socket for the native supervisor's exec requests (zygote._serve_exec).
EXEC_SOCKET = paths.RUN_DIR / "zygote.sock"


def native_binary() -> str | None:
    """The native steady-state supervisor, or None (not built, or turned off with
    SDCONTAINER_MONITOR=python; SDCONTAINER_MONITOR=/path names another build)."""
    choice = os.environ.get("SDCONTAINER_MONITOR", "")
    if choice == "python" or not sys.executable:
        return None
    if choice:
        return choice if os.access(choice, os.X_OK) else None
    for prefix in dict.fromkeys((sys.prefix, "/usr")):
        for rel in NATIVE_CANDIDATES:
            path = os.path.join(prefix, rel)
            if os.access(path, os.X_OK):
                return path
    return None


def native_log_args(spec: LaunchSpec) -> list[str]:
    """The native supervisor's options for SPEC's log (none for the journal alone, so
    that a build older than log drivers still takes the default)."""
    args: list[str] = []
    if spec.log_driver != "journald":
        args.append("--no-journal")
    if spec.log_driver == "json-file" and spec.json_log:
        args += ["--json-log", spec.json_log, "--log-max-size", str(spec.log_max_size),
                 "--log-max-file", str(spec.log_max_file)]
    if spec.cri_log_path:
        args += ["--cri-log", spec.cri_log_path]
    return args


def now_rfc3339() -> str:
    """The current time as docker writes it."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def read_request(conn: socket.socket) -> dict[str, Any]:
    """One JSON line, read byte by byte so no stream data after it is swallowed."""
    buf = bytearray()
    while not buf.endswith(b"\n"):
        b = conn.recv(1)
        if not b:
            raise ConnectionError("connection closed before a request")
        buf += b
        if len(buf) > 1 << 20:
            raise ConnectionError("request too long")
    data = json.loads(buf)
    if not isinstance(data, dict):
        raise ConnectionError("request is not an object")
    return data


def reply(conn: socket.socket, **data: Any) -> None:
    """Send one JSON line."""
    conn.sendall(json.dumps(data).encode() + b"\n")


def in_scope(scope: str) -> bool:
    """Whether systemd has moved us into SCOPE yet (an empty SCOPE: run without one)."""
    if not scope:
        return True
    with open("/proc/self/cgroup") as f:
        return any(line.rstrip().endswith("/" + scope) for line in f)


# The daemon's word, once StartTransientUnit's job is done, that systemd has moved us.
SCOPED = b'{"op": "scoped"}\n'
SCOPE_TIMEOUT = 30.0  # seconds


def wait_scoped(listener: socket.socket, scope: str) -> bool:
    """Block in accept() (no page touched, no polling) until the daemon says, on the
    control socket, that systemd has moved us into SCOPE, and check that it has.
    False after SCOPE_TIMEOUT seconds, or if we are not in SCOPE when told we are.
    Any other request before that is turned away: nothing runs before the move."""
    if not scope:
        return True
    deadline = time.monotonic() + SCOPE_TIMEOUT
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            listener.settimeout(remaining)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(max(deadline - time.monotonic(), 0.001))
                data = b""
                with contextlib.suppress(OSError):
                    while len(data) < len(SCOPED) and (chunk := conn.recv(len(SCOPED))):
                        data += chunk
                        if chunk.endswith(b"\n"):
                            break
                ok = data == SCOPED and in_scope(scope)
                with contextlib.suppress(OSError):
                    conn.sendall(b'{"scoped": true}\n' if ok else
                                 b'{"error": "the container is not in its scope yet"}\n')
                if data == SCOPED:
                    return ok
    except OSError:  # TimeoutError included
        return False
    finally:
        with contextlib.suppress(OSError):
            listener.settimeout(None)
    return False


def oom_killed() -> bool:
    """Whether the kernel's OOM killer has killed anything in our cgroup (v1 or v2)."""
    with open("/proc/self/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    candidates = []
    for _, controllers, path in lines:
        if "memory" in controllers.split(","):
            candidates.append(f"/sys/fs/cgroup/memory{path}/memory.oom_control")
        if controllers == "":
            candidates.append(f"/sys/fs/cgroup{path}/memory.events")
            candidates.append(f"/sys/fs/cgroup/unified{path}/memory.events")
    for candidate in candidates:
        try:
            with open(candidate) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        except OSError:
            continue
    return False


@dataclass
class Client:
    """An attached connection: receives output, may feed stdin."""

    conn: socket.socket
    stdout: bool = True
    stderr: bool = True
    stdin: bool = False


@dataclass
class Session:
    """The container's main process, or one exec."""

    tty: bool
    outputs: dict[int, int] = field(default_factory=dict)  # fd -> stream (1 stdout, 2 stderr)
    stdin_w: int | None = None
    master: int | None = None
    pid: int = 0
    pidfd: int = -1
    clients: list[Client] = field(default_factory=list)
    journal: logsink.OutputLog | None = None  # the log driver's writers, CRI's file
    exit_code: int | None = None
    waiters: list[socket.socket] = field(default_factory=list)  # exec_wait connections

    def send(self, stream: int, data: bytes) -> None:
        """Forward DATA to the log (journal, log files) and every client that asked for
        STREAM."""
        if self.journal is not None:
            self.journal.feed(stream, data)
        frame = data if self.tty else struct.pack(">BxxxI", stream, len(data)) + data
        for client in list(self.clients):
            if (stream == 1 and not client.stdout) or (stream == 2 and not client.stderr):
                continue
            try:
                client.conn.sendall(frame)
            except OSError:
                self.drop(client)

    def drop(self, client: Client) -> None:
        """Forget CLIENT and close its connection."""
        if client in self.clients:
            self.clients.remove(client)
        with contextlib.suppress(OSError):
            client.conn.close()


def make_stdio(tty: bool, open_stdin: bool, session: Session
               ) -> tuple[list[int], socket.socket | None, socket.socket | None]:
    """Stdio for a new process: ([stdin, stdout, stderr] pipe ends for the child, None, None),
    or for a tty ([], our end, the child's end) of a socket over which the child, once inside
    the container, sends the master of a pty it opened on the container's own devpts (so
    `tty` names /dev/pts/0 there, as with runc's console socket)."""
    if tty:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return [], ours, theirs
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    session.outputs = {out_r: 1, err_r: 2}
    if open_stdin:
        in_r, in_w = os.pipe()
        session.stdin_w = in_w
    else:
        in_r = os.open("/dev/null", os.O_RDONLY)
    return [in_r, out_w, err_w], None, None


def child_stdio(fds: list[int]) -> None:
    """In the child: install pipe stdio (a tty child installs its pty itself, later)."""
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)


def receive_master(sock: socket.socket, session: Session, open_stdin: bool) -> None:
    """Take the pty master the child sent (nothing if it failed before opening one)."""
    if sock.gettimeout() != 0.0:
        sock.settimeout(30)
    try:
        _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    except OSError:
        fds = []
    sock.close()
    if fds:
        master = fds[0]
        os.set_blocking(master, False)
        session.master = master
        session.outputs[master] = 1
        session.stdin_w = master if open_stdin else None


@dataclass
class PendingExec:
    """An exec session whose process has not yet exec'd or failed."""

    session: Session
    conn: socket.socket
    exec_id: str
    stdin: bool
    err_r: int
    tty_sock: socket.socket | None
    failure: bytes = b""


MAX_FINISHED_EXECS = 64


class Monitor:
    """The monitor's state and event loop."""

    def __init__(self, spec: LaunchSpec, listener: socket.socket, journal: bool = True,
                 spec_json: bytes = b"") -> None:
        self.spec = spec
        self.spec_json = spec_json  # SPEC as the daemon sent it, for the native handoff
        self.listener = listener
        self.sel = selectors.DefaultSelector()
        self.main = Session(tty=spec.tty,
                            journal=logsink.for_spec(spec) if journal else None)
        self.execs: dict[str, Session] = {}
        self.finished: collections.deque[str] = collections.deque()
        self.started = False
        self.handoff = False  # the workload runs: hand over to the native supervisor

    # -- the workload -------------------------------------------------------

    def start_workload(self) -> tuple[int, str]:
        """Fork the container's PID 1; return (pid, "") or (exit code, why it failed)."""
        # serve() waited for the daemon's "scoped": this only confirms it.
        if not in_scope(self.spec.scope):
            return -125, f"systemd did not move the monitor into {self.spec.scope}"
        try:  # opened first: a namespace that went away fails the start, nothing made yet
            join_pid_ns = os.open(self.spec.pid, os.O_RDONLY | os.O_CLOEXEC) \
                if self.spec.pid not in ("new", "host") else -1
        except OSError as e:
            return -125, f"cannot join the pid namespace {self.spec.pid}: {e.strerror}"
        fds, ours, theirs = make_stdio(self.spec.tty, self.spec.open_stdin, self.main)
        err_r, err_w = os.pipe()
        # Made here, where /proc still names our children by the pids fork() returns.
        userns_fd = userns.create(self.spec.userns_base, self.spec.userns_size) \
            if self.spec.userns_base else -1
        # The workload alone is born in the new (or joined) pid namespace: we return to
        # our own right after, so that exec sessions start where the container cannot
        # see them.
        own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if self.spec.pid == "new":
            sc.unshare(sc.CLONE_NEWPID)
        elif join_pid_ns >= 0:
            sc.setns(join_pid_ns, sc.CLONE_NEWPID)  # for our children only
            os.close(join_pid_ns)
        pid = os.fork()
        if pid == 0:
            child_stdio(fds)
            sandbox.launch(self.spec, err_w, theirs, userns_fd)
        sc.setns(own_pid_ns, sc.CLONE_NEWPID)
        os.close(own_pid_ns)
        os.close(err_w)
        if userns_fd >= 0:
            os.close(userns_fd)
        for fd in set(fds):
            os.close(fd)
        if ours is not None and theirs is not None:
            theirs.close()
            receive_master(ours, self.main, self.spec.open_stdin)
        failure = b""
        while chunk := os.read(err_r, 4096):
            failure += chunk
        os.close(err_r)
        self.main.pid = pid
        self.main.pidfd = os.pidfd_open(pid)
        for fd in self.main.outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("out", self.main))
        self.sel.register(self.main.pidfd, selectors.EVENT_READ, ("exit", self.main))
        if failure:
            code, _, message = failure.decode(errors="replace").partition(" ")
            return -int(code), message
        return pid, ""

    def start_exec(self, req: dict[str, Any], conn: socket.socket) -> None:
        """Start an exec session inside the container; its start is reported to CONN when
        the session's process has exec'd or failed (exec_started), never waited for here:
        a hostile image can make that take forever, and the monitor serves everyone."""
        session = Session(tty=bool(req.get("tty")))
        stdin = bool(req.get("stdin"))
        fds, ours, theirs = make_stdio(session.tty, stdin, session)
        err_r, err_w = os.pipe()
        main = self.main.pid
        ns = [os.open(f"/proc/{main}/ns/{n}", os.O_RDONLY | os.O_CLOEXEC)
              for n in ("ipc", "uts", "net", "mnt")]
        pid_ns = os.open(f"/proc/{main}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        # The user namespace last: after it we could no longer join the others.
        userns_fd = os.open(f"/proc/{main}/ns/user", os.O_RDONLY | os.O_CLOEXEC) \
            if self.spec.userns_base else -1
        # exec --privileged: every capability and no seccomp filter, for this session only.
        spec = dataclasses.replace(self.spec, caps=list(security.CAPS), seccomp="unconfined",
                                   no_new_privs=False) if req.get("privileged") else self.spec
        pid = os.fork()
        if pid == 0:
            child_stdio(fds)
            sandbox.exec_session(
                spec, [str(a) for a in req["argv"]], str(req.get("cwd") or self.spec.cwd
                                                               or "/"),
                str(req.get("user") or self.spec.user), [*self.spec.env, *req.get("env", [])],
                ns, pid_ns, err_w, theirs, userns_fd)
        if userns_fd >= 0:
            os.close(userns_fd)
        for fd in [*ns, pid_ns, err_w, *set(fds)]:
            os.close(fd)
        if theirs is not None:
            theirs.close()
        session.pid = pid
        session.pidfd = os.pidfd_open(pid)
        self.execs[str(req["id"])] = session
        os.set_blocking(err_r, False)
        pending = PendingExec(session, conn, str(req["id"]), stdin, err_r, ours)
        self.sel.register(err_r, selectors.EVENT_READ, ("execstart", pending))

    def exec_started(self, pending: PendingExec) -> None:
        """The exec's failure pipe spoke: a report, or EOF once tini was exec'd."""
        try:
            chunk = os.read(pending.err_r, 4096)
        except BlockingIOError:
            return
        if chunk:
            pending.failure += chunk
            if len(pending.failure) < 8192:
                return
        self.sel.unregister(pending.err_r)
        os.close(pending.err_r)
        session, conn = pending.session, pending.conn
        if pending.tty_sock is not None:
            # The child sent the pty master before it could exec or fail: it is there now.
            pending.tty_sock.setblocking(False)
            receive_master(pending.tty_sock, session, pending.stdin)
        try:
            if pending.failure:
                code, _, message = pending.failure.decode(errors="replace").partition(" ")
                reply(conn, error=message, code=int(code) if code.isdigit() else 126)
            else:
                reply(conn, pid=session.pid)
            conn.settimeout(CLIENT_TIMEOUT)
        except OSError:
            conn.close()
        else:
            client = Client(conn, stdin=pending.stdin)
            session.clients.append(client)
            if client.stdin:
                self.sel.register(conn, selectors.EVENT_READ, ("in", session, client))
        for fd in session.outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("out", session))
        self.sel.register(session.pidfd, selectors.EVENT_READ, ("exit", session))

    def forget_finished_execs(self, exec_id: str) -> None:
        """Keep the status of the last MAX_FINISHED_EXECS sessions only: a healthcheck
        every second must not grow the monitor for the container's whole life."""
        self.finished.append(exec_id)
        while len(self.finished) > MAX_FINISHED_EXECS:
            self.execs.pop(self.finished.popleft(), None)

    # -- events ---------------------------------------------------------------

    def handle_request(self, conn: socket.socket) -> None:
        """Serve the first line of a new control connection."""
        try:
            conn.settimeout(5)
            req = read_request(conn)
            op = req.get("op")
            if op == "attach":
                client = Client(conn, bool(req.get("stdout", True)), bool(req.get("stderr", True)),
                                bool(req.get("stdin")))
                reply(conn, ok=True)
                conn.settimeout(CLIENT_TIMEOUT)
                self.main.clients.append(client)
                if client.stdin:
                    self.sel.register(conn, selectors.EVENT_READ, ("in", self.main, client))
                return
            if op == "go" and not self.started:
                self.started = True
                pid, error = self.start_workload()
                if error:
                    reply(conn, error=error, code=-pid)
                else:
                    reply(conn, pid=pid)
                    self.handoff = True
            elif op == "exec" and self.main.pid and self.main.exit_code is None:
                self.start_exec(req, conn)
                return
            elif op == "exec_wait":
                # Answered when the session's process is reaped (`reaped`): the daemon
                # awaits its exit status instead of polling exec_status.
                s = self.execs.get(str(req.get("id")))
                if s is None:
                    reply(conn, error="no such exec")
                elif s.exit_code is None:
                    s.waiters.append(conn)
                    return
                else:
                    reply(conn, exit_code=s.exit_code)
            elif op == "exec_status":
                s = self.execs.get(str(req.get("id")))
                if s is None:
                    reply(conn, error="no such exec")
                else:
                    reply(conn, pid=s.pid, running=s.exit_code is None, exit_code=s.exit_code)
            elif op == "resize":
                s = self.execs.get(str(req.get("id"))) if req.get("id") else self.main
                if s is not None and s.master is not None:
                    fcntl.ioctl(s.master, termios.TIOCSWINSZ,
                                struct.pack("HHHH", int(req["h"]), int(req["w"]), 0, 0))
                reply(conn, ok=True)
            elif op == "ping":
                reply(conn, ok=True, pid=self.main.pid)
            elif op == "reopen_log":
                # After kubelet (or logrotate) renamed the file away: lines to come go
                # to a new file at the same path.
                if self.main.journal is not None:
                    self.main.journal.reopen()
                reply(conn, ok=True)
            else:
                reply(conn, error=f"cannot {op} now")
        except (OSError, ValueError, KeyError, ConnectionError) as e:
            with contextlib.suppress(OSError):
                reply(conn, error=str(e))
        conn.close()

    def pump(self, fd: int, session: Session) -> None:
        """Move what FD has to the session's sinks; on EOF, stop watching it."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's last slave closed
            data = b""
        if data:
            session.send(session.outputs[fd], data)
            return
        self.sel.unregister(fd)
        del session.outputs[fd]
        if fd != session.stdin_w:
            os.close(fd)
        if not session.outputs:
            self.outputs_done(session)

    def outputs_done(self, session: Session) -> None:
        if session.journal is not None:
            session.journal.flush()

    def feed_stdin(self, session: Session, client: Client) -> None:
        """Client bytes to the workload's stdin; client EOF closes it (docker's CloseWrite)."""
        try:
            data = client.conn.recv(65536)
        except OSError:
            data = b""
        if data and session.stdin_w is not None:
            with contextlib.suppress(OSError):
                os.set_blocking(session.stdin_w, True)
                os.write(session.stdin_w, data)
                if session.master is not None:
                    os.set_blocking(session.stdin_w, False)
            return
        self.sel.unregister(client.conn)
        client.stdin = False
        if session.stdin_w is not None and session.master is None:
            os.close(session.stdin_w)
            session.stdin_w = None

    def reaped(self, session: Session) -> None:
        """SESSION's process ended: record its status, drain output, let clients go."""
        _, status = os.waitpid(session.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        session.exit_code = code if code >= 0 else 128 - code
        self.sel.unregister(session.pidfd)
        os.close(session.pidfd)
        # The status first: it is on its way before the session's stream ends below.
        for waiter in session.waiters:
            with contextlib.suppress(OSError):
                reply(waiter, exit_code=session.exit_code)
            waiter.close()
        session.waiters.clear()
        # The process is gone but a pipe may still hold output (or a grandchild may
        # hold it open): drain what is there now, without waiting for EOF.
        for fd in list(session.outputs):
            while fd in session.outputs:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                session.send(session.outputs[fd], data)
            self.sel.unregister(fd)
            os.close(fd)
            del session.outputs[fd]
        self.outputs_done(session)
        for client in list(session.clients):
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.sel.unregister(client.conn)
            with contextlib.suppress(OSError):
                client.conn.shutdown(socket.SHUT_RDWR)
            session.drop(client)

    def become_native(self) -> None:
        """execve() the native supervisor in this process, handing it the workload (our
        child), its output, stdin, pty, attached clients and the control socket; a memfd
        holds the spec for exec sessions.  Returns only if that cannot be done: then the
        Python loop goes on, as it always did."""
        binary = native_binary()
        if binary is None:
            return
        main = self.main
        spec_fd = os.memfd_create("sdc-spec", 0)
        try:
            data = memoryview(self.spec_json or json.dumps(asdict(self.spec)).encode())
            while data:
                data = data[os.write(spec_fd, data):]
            args = [binary, "--listener", str(self.listener.fileno()), "--pid", str(main.pid),
                    "--exit-file", self.spec.exit_file, "--python", sys.executable,
                    "--spec-fd", str(spec_fd), "--init-fd", str(initbin.fd()),
                    "--zygote", str(EXEC_SOCKET)]
            inherit = [self.listener.fileno(), initbin.fd(), *main.outputs]
            if self.spec.tty:
                args.append("--tty")
            for fd, stream in main.outputs.items():
                args += ["--out", f"{fd}:{stream}"]
            if main.master is not None:
                args += ["--master", str(main.master)]
            if main.stdin_w is not None:
                args += ["--stdin", str(main.stdin_w)]
                inherit.append(main.stdin_w)
            for c in main.clients:
                args += ["--client", f"{c.conn.fileno()}:{int(c.stdout)}:{int(c.stderr)}:"
                         f"{int(c.stdin)}"]
                inherit.append(c.conn.fileno())
            for key, value in self.spec.journal_fields.items():
                if value and "\n" not in value:
                    args += ["--field", f"{key}={value}"]
            args += native_log_args(self.spec)
            for fd in inherit:
                if fd >= 0:
                    os.set_inheritable(fd, True)
            os.execve(binary, args, os.environ)
        except OSError as e:
            log.warning("cannot start the native monitor %s: %s", binary, e)
        os.close(spec_fd)

    def finish(self, code: int, error: str = "") -> NoReturn:
        """Write the exit file and leave; systemd then collects the empty scope."""
        killed = code == 137 and oom_killed()
        fileio.write_json_atomic(self.spec.exit_file, {
            "exit_code": code, "oom_killed": killed, "finished_at": now_rfc3339(), "error": error,
        })
        os._exit(0)

    def run(self) -> NoReturn:
        """The event loop; returns only by exiting."""
        self.sel.register(self.listener, selectors.EVENT_READ, ("accept",))
        while True:
            for key, _ in self.sel.select():
                what = key.data
                if what[0] == "accept":
                    with contextlib.suppress(BlockingIOError):
                        conn, _ = self.listener.accept()
                        self.handle_request(conn)
                        if self.started and self.main.pid == 0:
                            self.finish(125, "start failed")
                        if self.handoff:
                            self.handoff = False
                            self.become_native()
                elif what[0] == "out":
                    self.pump(key.fd, what[1])
                elif what[0] == "in":
                    self.feed_stdin(what[1], what[2])
                elif what[0] == "execstart":
                    self.exec_started(what[1])
                elif what[0] == "exit":
                    session = what[1]
                    self.reaped(session)
                    if session is self.main:
                        self.finish(session.exit_code if session.exit_code is not None else 255)
                    self.forget_finished_execs(next(
                        (k for k, v in self.execs.items() if v is session), ""))


def serve(spec: LaunchSpec, listener: socket.socket, spec_json: bytes = b"") -> NoReturn:
    """The monitor's life, from fork to exit (SPEC_JSON: SPEC as the daemon sent it)."""
    try:
        # Touch as little as possible until systemd has moved us into the container's
        # scope: memory pages copied before the move are charged to the daemon's cgroup.
        # The daemon tells us once StartTransientUnit's job is done; until then we sleep
        # in accept().
        if not wait_scoped(listener, spec.scope):
            os._exit(125)
        os.setsid()
        sc.set_process_name("sdc-monitor")
        # The monitor shares the container's memory limit; the kernel's OOM killer must
        # pick the workload, never the witness of its death (conmon does the same).
        # Every child sets its own score back (sandbox.reset_oom_score).
        sandbox.protect_from_oom()
        for sig in IGNORED:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_IGN)
        for glibc_sig in sc.GLIBC_SIGNALS:  # else `kill -s 32` would end the monitor
            with contextlib.suppress(OSError):
                sc.set_disposition(glibc_sig, sc.SIG_IGN)
        sc.set_child_subreaper()
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        # Whatever the daemon had open (its state lock, the zygote's socket) is not ours;
        # the static init's sealed memfd is (initbin).
        sandbox.close_fds(listener.fileno(), initbin.fd())
        monitor = Monitor(spec, listener, spec_json=spec_json)
    except BaseException:
        os._exit(125)
    try:
        monitor.run()
    except BaseException as e:
        with contextlib.suppress(BaseException):
            monitor.finish(255, f"monitor failed: {e}")
        os._exit(255)


def exec_session_main(args: list[str]) -> NoReturn:
    """One exec session under the native supervisor, which forked and exec'd us with
    ARGS: the client's connection, our end of the control channel, the spec's memfd, the
    static init's sealed memfd and the workload's pid (the fallback when the zygote's
    exec socket cannot be reached: see run_exec_session)."""
    conn_fd, ctl_fd, spec_fd, init_fd, main_pid = (int(a) for a in args[:5])
    for fd in (conn_fd, ctl_fd, spec_fd, init_fd):
        if fd >= 0:
            os.set_inheritable(fd, False)
    # The zygote's sealed copy, inherited: exec sessions must exec nothing else.
    initbin._fd = init_fd
    run_exec_session(conn_fd, ctl_fd, spec_fd, main_pid)


def run_exec_session(conn_fd: int, ctl_fd: int, spec_fd: int, main_pid: int) -> NoReturn:
    """One exec session of the native supervisor, run by a process of its own (forked by
    the zygote, or a fresh interpreter): CONN_FD is the client's connection, CTL_FD our
    end of the control channel (the exec request arrives on it first, then resizes),
    SPEC_FD the spec's memfd, MAIN_PID the workload.  We start the session exactly as
    the Python monitor does (Monitor.start_exec: forked outside the container's pid
    namespace, then the launcher's order), serve the client, and exit with the session's
    status, which we also send on the control channel ("exit N"): the supervisor hands
    it to exec_wait even when we are not its child."""
    conn = socket.socket(fileno=conn_fd)
    ctl: socket.socket | None = None
    try:
        sc.set_process_name("sdc-exec")
        # pread: concurrent sessions share the memfd's file offset.
        spec = LaunchSpec.load(json.loads(os.pread(spec_fd, os.fstat(spec_fd).st_size, 0)))
        os.close(spec_fd)
        ctl = socket.socket(fileno=ctl_fd)
        req = read_request(ctl)
        sandbox.protect_from_oom()  # so the session's process resets its own score
        monitor = Monitor(spec, ctl, journal=False)
        monitor.main.pid = main_pid
        monitor.start_exec(req, conn)
        session = monitor.execs[str(req["id"])]
        ctl.sendall(f"pid {session.pid}\n".encode())
        ctl.setblocking(False)
        monitor.sel.register(ctl, selectors.EVENT_READ, ("resize",))
        size: tuple[int, int] | None = None
    except BaseException as e:
        with contextlib.suppress(BaseException):
            reply(conn, error=f"exec failed: {e}", code=126)
        _exit_session(ctl, 126)
    try:
        while True:
            for key, _ in monitor.sel.select():
                what = key.data
                if what[0] == "out":
                    monitor.pump(key.fd, what[1])
                elif what[0] == "in":
                    monitor.feed_stdin(what[1], what[2])
                elif what[0] == "execstart":
                    monitor.exec_started(what[1])
                elif what[0] == "resize":
                    try:
                        lines = ctl.recv(4096).split()
                    except BlockingIOError:
                        continue
                    except OSError:
                        lines = []
                    if not lines:
                        monitor.sel.unregister(ctl)
                    elif len(lines) >= 2:
                        size = int(lines[-2]), int(lines[-1])
                elif what[0] == "exit":
                    monitor.reaped(session)
                    _exit_session(ctl, session.exit_code if session.exit_code is not None
                                  else 255)
                if size is not None and session.master is not None:
                    fcntl.ioctl(session.master, termios.TIOCSWINSZ,
                                struct.pack("HHHH", size[0], size[1], 0, 0))
                    size = None
    except BaseException:
        _exit_session(ctl, 255)


def _exit_session(ctl: socket.socket | None, code: int) -> NoReturn:
    """Tell the supervisor CODE (best effort: it takes EOF for a kill), and exit with it."""
    if ctl is not None:
        with contextlib.suppress(BaseException):
            ctl.setblocking(True)
            ctl.settimeout(5)
            ctl.sendall(f"exit {code}\n".encode())
    os._exit(code)


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "exec-session":
        exec_session_main(sys.argv[2:])
    sys.exit("usage: run by sdcontainer's native monitor only")
