"""Docker Engine API: exec create, start, inspect, resize.

Exec sessions run inside the container's namespaces and scope, forked by its
monitor; their ids live in the daemon's memory, as docker's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..engine import monitor_client
from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, LaunchError, NotFound
from . import proxy
from .http import Hijack, Request, Response, Router, json_response
from .wire import get, get_str_list

MAX_FINISHED = 256


@dataclass
class Exec:
    """One exec session."""

    id: str
    container_id: str
    argv: list[str]
    env: list[str]
    cwd: str
    user: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    pid: int = 0
    running: bool = False
    exit_code: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ExecAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.execs: dict[str, Exec] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/containers/{id}/exec", self.create)
        r.add("POST", "/exec/{id}/start", self.start)
        r.add("GET", "/exec/{id}/json", self.inspect)
        r.add("POST", "/exec/{id}/resize", self.resize)

    def _get(self, exec_id: str) -> Exec:
        e = self.execs.get(exec_id)
        if e is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return e

    async def create(self, req: Request) -> Response:
        c = self.engine.get(req.params["id"])
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        argv = get_str_list(body, "Cmd", allow_string=True)
        if not argv:
            raise InvalidArgument("No exec command specified")
        if get(body, "Privileged", bool, False):
            raise InvalidArgument("privileged exec is not supported by sdcontainer yet")
        e = Exec(secrets.token_hex(32), c.id, argv, get_str_list(body, "Env") or [],
                 get(body, "WorkingDir", str, ""), get(body, "User", str, ""),
                 get(body, "Tty", bool, False), get(body, "AttachStdin", bool, False),
                 get(body, "AttachStdout", bool, False), get(body, "AttachStderr", bool, False))
        self.prune()
        self.execs[e.id] = e
        return json_response({"Id": e.id}, 201)

    def prune(self) -> None:
        """Forget finished sessions of containers that are gone, and all but the newest
        MAX_FINISHED finished ones, so that a client that execs forever (a monitoring
        loop) does not grow the daemon."""
        finished = [k for k, e in self.execs.items() if e.exit_code is not None]
        for k in finished:
            if self.execs[k].container_id not in self.engine.containers:
                del self.execs[k]
        finished = [k for k in finished if k in self.execs]
        for k in finished[:max(0, len(finished) - MAX_FINISHED)]:
            del self.execs[k]

    async def _open(self, e: Exec) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        c = self.engine.get(e.container_id)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if e.running or e.exit_code is not None:
            raise Conflict(f"exec {e.id} has already been started")
        answer, reader, writer = await monitor_client.request(
            c.control_socket, op="exec", id=e.id, argv=e.argv, env=e.env, cwd=e.cwd,
            user=e.user, tty=e.tty, stdin=e.stdin)
        if "error" in answer:
            writer.close()
            code = int(answer.get("code", 126))
            e.exit_code = code
            e.done.set()
            raise LaunchError(str(answer["error"]), code)
        e.pid, e.running = int(answer.get("pid", 0)), True
        return reader, writer

    async def _finish(self, e: Exec) -> None:
        c = self.engine.containers.get(e.container_id)
        code = None
        if c is not None and c.running:
            with contextlib.suppress(Exception):
                # The stream ends before the monitor has reaped the process; on a busy
                # host that can take a while, and a guess (137) would be a wrong answer.
                for _ in range(1000):
                    status = await monitor_client.call(c.control_socket, op="exec_status", id=e.id)
                    if not status.get("running", False):
                        code = status.get("exit_code")
                        break
                    await asyncio.sleep(0.01)
        e.running = False
        e.exit_code = 137 if code is None else int(code)
        e.done.set()

    async def start(self, req: Request) -> Response | Hijack:
        e = self._get(req.params["id"])
        body = req.json()
        detach = isinstance(body, dict) and bool(body.get("Detach"))
        mreader, mwriter = await self._open(e)
        if detach:
            async def drain() -> None:
                while await mreader.read(65536):
                    pass
                mwriter.close()
                await self._finish(e)

            self._tasks.add(task := asyncio.ensure_future(drain()))
            task.add_done_callback(self._tasks.discard)
            return Response(200)

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await proxy.pipe(reader, writer, mreader, mwriter)
            finally:
                await self._finish(e)

        return Hijack(run, "application/vnd.docker.raw-stream" if e.tty else
                      "application/vnd.docker.multiplexed-stream")

    async def inspect(self, req: Request) -> Response:
        e = self._get(req.params["id"])
        return json_response(self.describe(e))

    def describe(self, e: Exec) -> dict[str, Any]:
        """docker's exec inspect shape."""
        return {
            "ID": e.id, "Running": e.running, "ExitCode": e.exit_code,
            "ContainerID": e.container_id,
            "Pid": e.pid, "OpenStdin": e.stdin, "OpenStdout": e.stdout, "OpenStderr": e.stderr,
            "ProcessConfig": {"entrypoint": e.argv[0], "arguments": e.argv[1:], "tty": e.tty,
                              "user": e.user, "privileged": False},
        }

    async def resize(self, req: Request) -> Response:
        e = self._get(req.params["id"])
        c = self.engine.get(e.container_id)
        await monitor_client.call(c.control_socket, op="resize", id=e.id,
                                  h=req.int_arg("h", 24), w=req.int_arg("w", 80))
        return Response(200)
