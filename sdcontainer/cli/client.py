"""The CLI's HTTP client for sdcontainerd's Docker-compatible API.

Stdlib only (our own small HTTP/1.1 over a unix socket, see http1.py): the CLI's
start-up must not pay for the daemon's libraries.
"""

from __future__ import annotations

import os
import socket

from ..errors import DaemonUnavailable, SdcError
from . import http1
from .fastjson import loads

# json (to encode), typing, threading, struct, urllib are imported where used: start-up
# is paid on every command (see main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator
    from typing import Any, BinaryIO

API = "/v1.41"


class Usage(SdcError):
    """A command-line mistake: exit 125 for run/create, else 1, like docker."""


class StartError(SdcError):
    """The container was created but could not start: docker's 126/127 apply."""

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class APIError(SdcError):
    """An error answer from the daemon."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise DaemonUnavailable(
            f"Cannot connect to sdcontainerd at unix://{path}: {e.strerror}. "
            "Is sdcontainerd running?") from None
    return s


def socket_path() -> str:
    """Where the daemon listens: $SDCONTAINER_HOST or $DOCKER_HOST (unix://), or the default."""
    for var in ("SDCONTAINER_HOST", "DOCKER_HOST"):
        value = os.environ.get(var, "")
        if value.startswith("unix://"):
            return value[len("unix://"):]
    # paths.SOCKET, without the pathlib import paths.py costs every command
    # (tests/unit/test_gotemplate.py keeps the two in step).
    run_dir = os.environ.get("SDCONTAINER_RUN_DIR", "/run/sdcontainer")
    return os.environ.get("SDCONTAINER_SOCKET", os.path.join(run_dir, "sdcontainer.sock"))


def query_string(query: dict[str, Any] | None) -> str:
    """?a=1&b=x, dropping None values, booleans as 1/0, lists repeated."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for k, v in query.items():
        if v is None:
            continue
        for item in v if isinstance(v, list) else [v]:
            pairs.append((k, ("1" if item else "0") if isinstance(item, bool) else str(item)))
    if not pairs:
        return ""
    import urllib.parse

    return "?" + urllib.parse.urlencode(pairs)


def request_target(endpoint: str, query: dict[str, Any] | None) -> str:
    """The request line's target: the API prefix, ENDPOINT with what a path may not
    carry percent-encoded (a network named "test 01"; the daemon decodes each part),
    and the query."""
    if any(ch in endpoint for ch in ' "%<>\\^`{|}#?') or not endpoint.isascii() \
            or not endpoint.isprintable():
        import urllib.parse

        endpoint = urllib.parse.quote(endpoint, safe="/:@!$&'()*+,;=~")
    return API + endpoint + query_string(query)


class Client:
    """One daemon endpoint."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or socket_path()

    def _send(self, method: str, endpoint: str, query: dict[str, Any] | None,
              body: Any, raw: bytes | BinaryIO | None,
              headers: dict[str, str] | None = None) -> http1.Response:
        hdrs = dict(headers or {})
        data: bytes | BinaryIO | None = None
        if raw is not None:
            data = raw
            hdrs.setdefault("Content-Type", "application/x-tar")
        elif body is not None:
            import json

            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif method in ("POST", "PUT"):
            data = b""
        try:
            resp = http1.request(_connect(self.path), method, request_target(endpoint, query),
                                 hdrs, data)
        except (ConnectionError, BrokenPipeError) as e:
            raise SdcError(f"the daemon closed the connection: {e}") from None
        if resp.status >= 400:
            message = http1.error_message(resp)
            resp.close()
            raise APIError(resp.status, message)
        return resp

    def call(self, method: str, endpoint: str, query: dict[str, Any] | None = None,
             body: Any = None, raw: bytes | BinaryIO | None = None) -> Any:
        """A request whose answer is one JSON document (or nothing)."""
        resp = self._send(method, endpoint, query, body, raw)
        data = resp.read()
        resp.close()
        if not data.strip():
            return None
        try:
            return loads(data)
        except ValueError:
            return data.decode(errors="replace")

    def stream(self, method: str, endpoint: str, query: dict[str, Any] | None = None,
               body: Any = None, raw: bytes | BinaryIO | None = None) -> http1.Response:
        """A request whose answer the caller reads as it comes."""
        return self._send(method, endpoint, query, body, raw)

    def start_or_remove(self, cid: str) -> None:
        """Start CID; if that fails, remove it (as docker run -d does) and raise StartError."""
        try:
            self.call("POST", f"/containers/{cid}/start")
        except APIError as e:
            import contextlib

            with contextlib.suppress(APIError):
                self.call("DELETE", f"/containers/{cid}", {"force": True})
            raise StartError(str(e)) from None

    def wait_later(self, cid: str, condition: str
                   ) -> tuple[threading.Thread, dict[str, Any]]:
        """POST /containers/CID/wait in a thread, sent before the container starts so no
        exit is missed; the dict gets the answer ("StatusCode") or "error"."""
        import threading

        result: dict[str, Any] = {}

        def waiter() -> None:
            try:
                answer = self.call("POST", f"/containers/{cid}/wait", {"condition": condition})
                if not isinstance(answer, dict):
                    raise SdcError("the daemon gave no exit status")
                result.update(answer)
            except SdcError as e:
                result["error"] = e

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        return thread, result

    def json_lines(self, method: str, endpoint: str, query: dict[str, Any] | None = None,
                   raw: bytes | BinaryIO | None = None,
                   headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """A streamed answer of JSON messages (pull progress, events); HEADERS go with
        the request (X-Registry-Auth)."""
        resp = self._send(method, endpoint, query, None, raw, headers)
        for line in resp:
            if line.strip():
                yield loads(line)

    def hijack(self, endpoint: str, query: dict[str, Any] | None = None,
               body: Any = None) -> socket.socket:
        """POST ENDPOINT asking for a raw stream (attach, exec start); the bare socket."""
        s = _connect(self.path)
        import json

        payload = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {request_target(endpoint, query)} HTTP/1.1\r\nHost: localhost\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        s.sendall(head + payload)
        # Read the head byte by byte: whatever follows it is already stream data.
        buf = bytearray()
        while not buf.endswith(b"\r\n\r\n"):
            b = s.recv(1)
            if not b:
                raise SdcError("the daemon closed the connection")
            buf += b
        status = int(buf.split(b" ", 2)[1])
        if status >= 400:
            rest = b""
            length = 0
            for line in buf.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            while len(rest) < length and (chunk := s.recv(length - len(rest))):
                rest += chunk
            s.close()
            try:
                message = loads(rest)["message"]
            except (ValueError, KeyError, TypeError):
                message = rest.decode(errors="replace")
            raise APIError(status, message)
        return s


def demux(sock: socket.socket, out: BinaryIO, err: BinaryIO, tty: bool) -> None:
    """Copy a docker stream from SOCK to OUT and ERR until it ends."""
    import struct

    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        if tty:
            out.write(chunk)
            out.flush()
            continue
        buf += chunk
        while len(buf) >= 8:
            stream, size = struct.unpack(">BxxxI", buf[:8])
            if len(buf) < 8 + size:
                break
            target = err if stream == 2 else out
            target.write(buf[8:8 + size])
            target.flush()
            buf = buf[8 + size:]


def read_frames(resp: http1.Response, tty: bool) -> Iterator[tuple[int, bytes]]:
    """(stream, data) pieces of a multiplexed HTTP body (logs)."""
    import struct

    if tty:
        while chunk := resp.read1(65536):
            yield 1, chunk
        return
    while True:
        header = resp.read(8)
        if len(header) < 8:
            return
        stream, size = struct.unpack(">BxxxI", header)
        yield stream, resp.read(size)
