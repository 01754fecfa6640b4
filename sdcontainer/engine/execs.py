"""Exec sessions: a command run inside a running container, by its monitor.

The engine owns them, whoever asks: REST's exec create/start/inspect/resize,
D-Bus's Exec, and healthcheck probes all go through `ExecManager`, so each
makes the same record and the same events (exec_create, exec_start,
exec_die).  Sessions live in the daemon's memory, as docker's do; the newest
MAX_FINISHED finished ones are kept for `exec inspect`.

The exit status is sent, not polled: as soon as the monitor reports that the
session's process started, we send it `exec_wait`, a request it answers when
it reaps that process (it learns that through a pidfd).  A monitor that goes
away first (the container ended, and with its PID 1 every process of its pid
namespace) closes that connection unanswered: the session was killed (137).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import signal
import struct
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, InvalidArgument, LaunchError, NotFound, SdcError
from . import monitor_client
from .records import Container

if TYPE_CHECKING:
    from .ports import EngineAPI

MAX_FINISHED = 256  # finished sessions kept for inspect (a monitoring loop execs forever)
KILLED = 137  # a session whose monitor went away before reaping it died with its container
MAX_OUTPUT = 1 << 20  # the most of each stream `run` keeps

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class ExecConfig:
    """What to run, and how its stdio is attached."""

    argv: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = ""
    user: str = ""
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    privileged: bool = False  # every capability, no seccomp filter (exec --privileged)


@dataclass
class ExecSession:
    """One exec session, from create to its exit status."""

    id: str
    container_id: str
    config: ExecConfig
    pid: int = 0  # tini, the static init that runs the command (outside the pid namespace)
    started: bool = False
    running: bool = False
    exit_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class ExecResult:
    """What `ExecManager.run` collected: the exit code and the output, each stream
    cut at MAX_OUTPUT bytes; OUTPUT is both streams in the order they came."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    output: bytes = b""
    timed_out: bool = False


class FrameDecoder:
    """docker's multiplexed stream frames, fed in pieces, split into the two streams."""

    def __init__(self, limit: int = MAX_OUTPUT) -> None:
        self.limit = limit
        self._buf = bytearray()
        self.streams: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.both = bytearray()

    def feed(self, data: bytes) -> None:
        """Take DATA; complete frames go to their stream (past the limit, nowhere)."""
        self._buf += data
        while len(self._buf) >= 8:
            stream, size = self._buf[0], struct.unpack(">I", self._buf[4:8])[0]
            if len(self._buf) < 8 + size:
                break
            payload = bytes(self._buf[8:8 + size])
            del self._buf[:8 + size]
            out = self.streams.get(stream)
            if out is not None and len(out) < self.limit:
                out += payload[:self.limit - len(out)]
            if len(self.both) < self.limit:
                self.both += payload[:self.limit - len(self.both)]


def kill_tree(pid: int) -> None:
    """SIGKILL PID and its descendants, deepest first.  An exec session's PID is tini,
    outside the container's pid namespace; killing it alone would leave its child (the
    command) running, adopted by the container's PID 1."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        children = []
    for child in children:
        kill_tree(child)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


class ExecManager:
    """The exec sessions of one engine."""

    def __init__(self, engine: EngineAPI) -> None:
        self.engine = engine
        self.sessions: dict[str, ExecSession] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    def create(self, ref: str, config: ExecConfig) -> ExecSession:
        """A new session of running container REF; nothing runs until `start`."""
        c = self.engine.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if not config.argv:
            raise InvalidArgument("No exec command specified")
        self.prune()
        s = ExecSession(secrets.token_hex(32), c.id, config)
        self.sessions[s.id] = s
        self.engine.events.emit("container", f"exec_create: {shlex.join(config.argv)}", c,
                                execID=s.id)
        return s

    def get(self, exec_id: str) -> ExecSession:
        """The session EXEC_ID."""
        s = self.sessions.get(exec_id)
        if s is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return s

    def prune(self) -> None:
        """Forget the sessions of containers that are gone, and all but the newest
        MAX_FINISHED finished ones, so that a client that execs forever (a monitoring
        loop, a healthcheck) does not grow the daemon."""
        for k, s in list(self.sessions.items()):
            if not s.running and s.container_id not in self.engine.containers:
                del self.sessions[k]
        finished = [k for k, s in self.sessions.items() if s.exit_code is not None]
        for k in finished[:max(0, len(finished) - MAX_FINISHED)]:
            del self.sessions[k]

    def startable(self, s: ExecSession) -> Container:
        """S's container, if S may start now (else Conflict, or NoSuchContainer)."""
        c = self.engine.get(s.container_id)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if s.started:
            raise Conflict(f"exec {s.id} has already been started")
        return c

    async def start(self, s: ExecSession) -> Streams:
        """Run S's command; the monitor connection that carries its stdio (docker's
        stream format, raw for a tty).  A command that cannot start raises LaunchError
        with docker's code (126, 127), which is also S's exit code."""
        c = self.startable(s)
        s.started = True
        cfg = s.config
        try:
            answer, reader, writer = await monitor_client.request(
                c.control_socket, op="exec", id=s.id, argv=cfg.argv, env=cfg.env, cwd=cfg.cwd,
                user=cfg.user, tty=cfg.tty, stdin=cfg.stdin, privileged=cfg.privileged)
        except SdcError:
            self._finish(c, s, 126)
            raise
        if "error" in answer:
            writer.close()
            code = int(answer.get("code", 126))
            self._finish(c, s, code)
            raise LaunchError(str(answer["error"]), code)
        s.pid, s.running = int(answer.get("pid", 0)), True
        self.engine.events.emit("container", f"exec_start: {shlex.join(cfg.argv)}", c,
                                execID=s.id)
        self._spawn(self._await_exit(c, s))
        return reader, writer

    async def _await_exit(self, c: Container, s: ExecSession) -> None:
        """The monitor answers exec_wait when it reaps S's process."""
        code = KILLED
        with contextlib.suppress(SdcError, OSError, ValueError, TypeError):
            answer = await monitor_client.call(c.control_socket, op="exec_wait", id=s.id)
            if answer.get("exit_code") is not None:
                code = int(answer["exit_code"])
        self._finish(c, s, code)

    def _finish(self, c: Container, s: ExecSession, code: int) -> None:
        s.running, s.exit_code = False, code
        s.done.set()
        self.engine.events.emit("container", "exec_die", c, execID=s.id, exitCode=str(code))

    async def wait(self, s: ExecSession) -> int:
        """S's exit code, once its process has been reaped."""
        await s.done.wait()
        return KILLED if s.exit_code is None else s.exit_code

    async def start_detached(self, s: ExecSession) -> None:
        """Run S with nobody attached: its output is read and dropped."""
        reader, writer = await self.start(s)

        async def drain() -> None:
            try:
                with contextlib.suppress(OSError):
                    while await reader.read(65536):
                        pass
            finally:
                writer.close()

        self._spawn(drain())

    async def resize(self, s: ExecSession, height: int, width: int) -> None:
        """Set the size of S's terminal."""
        c = self.engine.get(s.container_id)
        await monitor_client.call(c.control_socket, op="resize", id=s.id, h=height, w=width)

    async def run(self, ref: str, argv: list[str], timeout: float | None = None) -> ExecResult:
        """Run ARGV in REF to its end and collect what it wrote (ExecSync).  A command
        that cannot start gives docker's code and the reason on stderr; past TIMEOUT
        seconds the session (tini and the command under it) is killed."""
        s = self.create(ref, ExecConfig(argv))
        try:
            reader, writer = await self.start(s)
        except LaunchError as e:
            why = str(e).encode()
            return ExecResult(e.exit_code, stderr=why, output=why)
        frames = FrameDecoder()
        try:
            async with asyncio.timeout(timeout):
                with contextlib.suppress(OSError):
                    while chunk := await reader.read(65536):
                        frames.feed(chunk)
                code = await self.wait(s)
        except TimeoutError:
            kill_tree(s.pid)
            return ExecResult(-1, bytes(frames.streams[1]), bytes(frames.streams[2]),
                              bytes(frames.both), timed_out=True)
        finally:
            writer.close()
        return ExecResult(code, bytes(frames.streams[1]), bytes(frames.streams[2]),
                          bytes(frames.both))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
