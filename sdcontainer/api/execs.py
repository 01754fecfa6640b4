"""Docker Engine API: exec create, start, inspect, resize.

The sessions are the engine's (engine/execs.py); this module translates
requests and streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from ..engine import views
from ..engine.core import Engine
from ..engine.execs import ExecConfig
from ..errors import InvalidArgument, SdcError
from . import proxy
from .http import Hijack, Request, Response, Router, json_response
from .wire import get, get_str_list


class ExecAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # An exec's DetachKeys, from create to start (docker's ExecConfig carries them).
        self.detach_keys: dict[str, str] = {}

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/containers/{id}/exec", self.create)
        r.add("POST", "/exec/{id}/start", self.start)
        r.add("GET", "/exec/{id}/json", self.inspect)
        r.add("POST", "/exec/{id}/resize", self.resize)

    async def create(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        argv = get_str_list(body, "Cmd", allow_string=True)
        if not argv:
            raise InvalidArgument("No exec command specified")
        # Go decodes JSON keys case-insensitively: docker-py sends "detachKeys".
        keys = get(body, "DetachKeys", str, "") or get(body, "detachKeys", str, "")
        proxy.parse_detach_keys(keys or None)  # a bad one is refused here, as dockerd does
        s = self.engine.execs.create(req.params["id"], ExecConfig(
            argv, get_str_list(body, "Env") or [], get(body, "WorkingDir", str, ""),
            get(body, "User", str, ""), get(body, "Tty", bool, False),
            get(body, "AttachStdin", bool, False), get(body, "AttachStdout", bool, False),
            get(body, "AttachStderr", bool, False), get(body, "Privileged", bool, False)))
        if keys:
            self.detach_keys[s.id] = keys
        return json_response({"Id": s.id}, 201)

    async def start(self, req: Request) -> Response | Hijack:
        s = self.engine.execs.get(req.params["id"])
        body = req.json()
        if isinstance(body, dict) and body.get("Detach"):
            await self.engine.execs.start_detached(s)
            return Response(200)
        self.engine.execs.startable(s)  # refused now, while an error can be an HTTP answer
        # The start request's Tty picks the stream format, as with dockerd: a tty session
        # started with Tty false is framed (stream 1), and the other way round unframed.
        tty = bool(body.get("Tty", s.config.tty)) if isinstance(body, dict) else s.config.tty
        detach_keys = proxy.parse_detach_keys(self.detach_keys.pop(s.id, None)) \
            if s.config.tty and s.config.stdin else b""

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # The session starts only once the response head is on its way, as dockerd
            # does it: a client that reads the head through a buffered file and then
            # switches to the raw socket (docker-py) would lose output sent with the
            # head.  A command that cannot start says why in the stream, as with dockerd,
            # and its code (126, 127) is the session's exit code.
            try:
                mreader, mwriter = await self.engine.execs.start(s)
            except SdcError as e:
                await self._say(writer, tty, f"{e}\n".encode())
                return
            feeder = None
            if tty != s.config.tty:
                mreader, feeder = _reframe(mreader, frame=not tty)
            detached = False
            try:
                detached = await proxy.pipe(reader, writer, mreader, mwriter, detach_keys)
            finally:
                if feeder is not None:
                    feeder.cancel()
                # The status is in before the connection closes: clients inspect next
                # (unless the client detached: the command goes on).
                if not detached:
                    await self.engine.execs.wait(s)

        return Hijack(run, "application/vnd.docker.raw-stream" if tty else
                      "application/vnd.docker.multiplexed-stream")

    @staticmethod
    async def _say(writer: asyncio.StreamWriter, tty: bool, text: bytes) -> None:
        """TEXT to the client on the session's stderr (its terminal with a tty)."""
        writer.write(text if tty else struct.pack(">BxxxI", 2, len(text)) + text)
        await writer.drain()

    async def inspect(self, req: Request) -> Response:
        return json_response(views.exec_inspect(self.engine.execs.get(req.params["id"])))

    async def resize(self, req: Request) -> Response:
        s = self.engine.execs.get(req.params["id"])
        await self.engine.execs.resize(s, req.int_arg("h", 24) or 24, req.int_arg("w", 80) or 80)
        return Response(200)


def _reframe(src: asyncio.StreamReader, frame: bool
             ) -> tuple[asyncio.StreamReader, asyncio.Future[None]]:
    """SRC's output in the other stream format: FRAME wraps raw bytes in stdout frames,
    otherwise the frames' headers are dropped.  The copying task is returned to be cancelled."""
    out = asyncio.StreamReader()

    async def feed() -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            if frame:
                while data := await src.read(65536):
                    out.feed_data(struct.pack(">BxxxI", 1, len(data)) + data)
            else:
                while True:
                    _, size = struct.unpack(">BxxxI", await src.readexactly(8))
                    out.feed_data(await src.readexactly(size))
        out.feed_eof()

    return out, asyncio.ensure_future(feed())
