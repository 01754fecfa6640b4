"""A small HTTP/1.1 server on asyncio streams, shaped for the Docker Engine API.

Why our own: the Docker API needs connection hijacking (attach and exec turn
the connection into a raw bidirectional stream after a 101), chunked streams
that run for hours (logs -f, events), and keep-alive; the stdlib server has
none of these on asyncio, and a framework would be a large dependency for
the few hundred lines below.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidArgument, NotFound, SdcError

log = logging.getLogger(__name__)

MAX_HEADER = 64 * 1024
MAX_BODY = 64 * 1024 * 1024  # a request body held in memory (JSON); uploads go to disk
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions, as Go's net/http allows
BODY_PIECE = 1 << 20  # the most of a body read at once
HEX = re.compile(rb"[0-9A-Fa-f]{1,64}")
DECIMAL = re.compile(r"[0-9]{1,20}")
MIN_API = (1, 24)
VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
REASONS = {200: "OK", 201: "Created", 204: "No Content", 101: "UPGRADED", 304: "Not Modified",
           400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 401: "Unauthorized",
           406: "Not Acceptable", 502: "Bad Gateway", 503: "Service Unavailable"}
# Swarm-mode resources: outside a swarm dockerd answers these with 503, and clients
# (docker-py, docker info) read that as "not a swarm manager", not as a missing API.
SWARM_PREFIXES = ("/swarm", "/services", "/nodes", "/secrets", "/configs", "/tasks")
NOT_MANAGER = ("This node is not a swarm manager. Use \"docker swarm init\" or "
               "\"docker swarm join\" to connect this node to swarm and try again.")


class HTTPError(SdcError):
    """A protocol-level error (malformed request), answered with STATUS."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status


@dataclass
class Request:
    """A parsed request; the body is read whole unless the route streams it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    body: bytes = b""
    api_version: tuple[int, int] | None = None
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter NAME."""
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as docker's clients send them (1/true/0/false)."""
        value = self.arg(name)
        if value is None or value == "":
            return default
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise InvalidArgument(f"invalid boolean value for {name}: {value!r}")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter."""
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(f"invalid integer value for {name}: {value!r}") from None

    def json(self) -> Any:
        """The body as JSON (an empty body is an empty object)."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise InvalidArgument(f"malformed JSON body: {e}") from None


@dataclass
class Response:
    """A whole response."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200) -> Response:
    """DATA as a JSON response."""
    return Response(status, json.dumps(data).encode() + b"\n")


@dataclass
class Stream:
    """A chunked response whose body CHUNKS yields."""

    chunks: AsyncIterator[bytes]
    content_type: str = "application/json"
    status: int = 200


@dataclass
class Hijack:
    """Take over the connection: send the upgrade head, then RUN owns the socket.  RUN
    opens the stream's source (exec, attach) itself, so nothing precedes the head."""

    run: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"


Handler = Callable[[Request], Awaitable[Response | Stream | Hijack]]


class Router:
    """Method + path pattern -> handler."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []

    def add(self, method: str, pattern: str, handler: Handler, stream_body: bool = False) -> None:
        """Route METHOD PATTERN to HANDLER.

        '{name}' matches one path segment, '{name*}' one or more (image names have
        slashes).  With STREAM_BODY the handler reads the body itself (uploads).
        """
        regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self.routes.append((method, re.compile(f"^{regex}$"), handler, stream_body))

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str], bool]:
        """The handler for METHOD PATH, its path parameters, and whether it streams the body."""
        allowed = False
        for m, regex, handler, stream_body in self.routes:
            match = regex.match(path)
            if match:
                if m == method:
                    params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                    return handler, params, stream_body
                allowed = True
        if allowed:
            raise HTTPError(405, f"method {method} not allowed on {path}")
        if any(path == p or path.startswith(p + "/") for p in SWARM_PREFIXES):
            raise HTTPError(503, NOT_MANAGER)
        raise NotFound(f"page not found: {path}")


def error_body(e: SdcError) -> bytes:
    """docker's error shape."""
    return json.dumps({"message": str(e)}).encode() + b"\n"


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The request line and headers, or None at a clean end of connection."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HTTPError(400, "incomplete request") from None
    except asyncio.LimitOverrunError:
        raise HTTPError(431, "request headers too large") from None


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"request body too large (the limit is {limit} bytes)")


async def _line(reader: asyncio.StreamReader, bound: int, what: str) -> bytes:
    """One CRLF-terminated line of a chunked body, at most BOUND bytes.

    The stream's own limit (1 MiB) caps what is buffered while looking for the end."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HTTPError(400, f"{what} too long") from None
    except asyncio.IncompleteReadError:
        raise HTTPError(400, "request body ended early") from None
    if len(line) > bound:
        raise HTTPError(400, f"{what} too long")
    return line


async def _chunked(reader: asyncio.StreamReader, limit: int | None) -> AsyncIterator[bytes]:
    """A chunked body, in pieces of at most BODY_PIECE bytes.

    A chunk is never read whole: a declared size beyond what is left of LIMIT is
    refused before any of its data is read, and the data comes in bounded pieces
    (an upload may legitimately send one huge chunk)."""
    total = 0
    while True:
        size_line = await _line(reader, MAX_CHUNK_LINE, "chunk-size line")
        digits = size_line.split(b";", 1)[0].strip()
        if not HEX.fullmatch(digits):
            raise HTTPError(400, "malformed chunked body")
        size = int(digits, 16)
        if size == 0:
            break
        if limit is not None and size > limit - total:
            raise _too_large(limit)
        total += size
        while size:
            piece = await reader.read(min(size, BODY_PIECE))
            if not piece:
                raise HTTPError(400, "request body ended early")
            size -= len(piece)
            yield piece
        try:
            if await reader.readexactly(2) != b"\r\n":
                raise HTTPError(400, "malformed chunked body")
        except asyncio.IncompleteReadError:
            raise HTTPError(400, "request body ended early") from None
    # Trailers (ignored) up to the empty line, bounded like a head.
    trailers = 0
    while (line := await _line(reader, MAX_HEADER, "chunked trailer")) not in (b"\r\n", b"\n"):
        trailers += len(line)
        if trailers > MAX_HEADER:
            raise HTTPError(400, "chunked trailer too long")


async def body_chunks(reader: asyncio.StreamReader, headers: dict[str, str],
                      limit: int | None = MAX_BODY) -> AsyncIterator[bytes]:
    """The body piece by piece (each at most BODY_PIECE bytes), refused with a 413 as
    soon as it is known to exceed LIMIT bytes; None means no limit (uploads to disk)."""
    encoding = headers.get("transfer-encoding")
    if encoding is not None:
        if encoding.strip().lower() != "chunked":
            raise HTTPError(501, f"unsupported Transfer-Encoding {encoding!r}")
        async for piece in _chunked(reader, limit):
            yield piece
        return
    length = headers.get("content-length", "0") or "0"
    if not DECIMAL.fullmatch(length):
        raise HTTPError(400, f"invalid Content-Length {length!r}")
    left = int(length)
    if limit is not None and left > limit:
        raise _too_large(limit)
    while left:
        chunk = await reader.read(min(left, BODY_PIECE))
        if not chunk:
            raise HTTPError(400, "request body ended early")
        left -= len(chunk)
        yield chunk


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The whole body (Content-Length or chunked), at most MAX_BODY bytes."""
    body = bytearray()
    async for chunk in body_chunks(reader, headers, MAX_BODY):
        body += chunk
    return bytes(body)


def head(status: int, content_type: str, extra: dict[str, str]) -> bytes:
    """A response head."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
             "Server: sdcontainerd", "Api-Version: 1.43", "Docker-Experimental: false",
             "Ostype: linux"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_head(raw: bytes) -> tuple[str, str, dict[str, list[str]], dict[str, str]]:
    """Method, path, query and lower-cased headers of a request head."""
    try:
        text = raw.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise HTTPError(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise HTTPError(400, f"unsupported protocol {version}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPError(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    url = urllib.parse.urlsplit(target)
    return method, url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True), headers


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close after an error answer without resetting the connection: a socket closed
    with unread request bytes makes the peer's recv fail before it reads our answer."""
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()
    with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
        async with asyncio.timeout(1):
            for _ in range(256):  # at most 16 MiB of an unwanted body
                if not await reader.read(65536):
                    break


class Server:
    """Serves ROUTER on any number of listening sockets."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests until the client goes or the connection is hijacked."""
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        method = ""
        try:
            raw = await read_head(reader)
            if raw is None:
                return False
            method, path, query, headers = parse_head(raw)
            log.debug("%s %s", method, path)
            req = Request(method, path, query, headers, reader, writer)
            m = VERSION_PREFIX.match(path)
            if m:
                req.api_version = (int(m.group(1)), int(m.group(2)))
                req.path = m.group(3)
                if req.api_version < MIN_API:
                    raise HTTPError(400, f"client version {m.group(1)}.{m.group(2)} is too old. "
                                    "Minimum supported API version is 1.24, please upgrade "
                                    "your client to a newer version")
            handler, req.params, stream_body = self.router.find(method, req.path)
            if not stream_body:
                try:
                    req.body = await read_body(reader, headers)
                except asyncio.IncompleteReadError:
                    raise HTTPError(400, "request body ended early") from None
            result = await handler(req)
        except SdcError as e:
            body = error_body(e)
            # A HEAD answer has no body (RFC 9110): a client keeping the connection would
            # read one as the start of its next answer.
            writer.write(head(e.http_status, "application/json",
                              {"Content-Length": str(len(body))})
                         + (b"" if method == "HEAD" else body))
            await writer.drain()
            if isinstance(e, HTTPError):
                await linger(reader, writer)
                return False
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False  # the client went away: nothing to answer
        except Exception as e:
            log.exception("internal error serving a request")
            body = error_body(SdcError(f"internal error: {e}"))
            writer.write(head(500, "application/json", {"Content-Length": str(len(body))}) + body)
            await writer.drain()
            return False
        if isinstance(result, Response):
            writer.write(head(result.status, result.content_type if result.body else "",
                              {**result.headers, "Content-Length": str(len(result.body))}))
            if method != "HEAD":
                writer.write(result.body)
            await writer.drain()
            return True
        if isinstance(result, Stream):
            writer.write(head(result.status, result.content_type,
                              {"Transfer-Encoding": "chunked"}))
            await writer.drain()
            try:
                async for chunk in result.chunks:
                    if chunk:
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await writer.drain()
            finally:
                aclose = getattr(result.chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        upgrade = req.headers.get("upgrade", "").lower() == "tcp"
        extra = {"Connection": "Upgrade", "Upgrade": "tcp"} if upgrade else {}
        # Some clients (docker-py over requests) read the head through a buffered file
        # and then switch to the raw socket: stream bytes that arrive with the head are
        # lost.  So, as dockerd does, the head goes out first and the stream's source
        # (an exec session, a monitor attachment) is opened only in RUN, after it: by
        # then the client, blocked reading the head, has it.
        writer.write(head(101 if upgrade else 200, result.content_type, extra))
        await writer.drain()
        await result.run(reader, writer)
        return False
