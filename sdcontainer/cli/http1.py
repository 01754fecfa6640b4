"""Just enough HTTP/1.1 for the CLI: one request per connection over a unix socket.

The stdlib's http.client costs the CLI 15 ms of imports (email, ssl) on every
command; requests to our own daemon need none of that.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO


class Response:
    """A response head, and its body read as it arrives (length, chunked, or to EOF)."""

    def __init__(self, sock: socket.socket, method: str = "GET") -> None:
        self._sock = sock
        self._f = sock.makefile("rb")
        status_line = self._f.readline()
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionError("the daemon sent a malformed response")
        self.status = int(parts[1])
        self.reason = parts[2].strip() if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        while (line := self._f.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        length = self.headers.get("content-length")
        self._left: int | None = int(length) if length and length.isdigit() else None
        # A HEAD answer's Content-Length is the GET's: it has no body.
        if self.status in (101, 204, 304) or method == "HEAD":
            self._left = 0
        self._chunk_left = 0
        self._buf = b""
        self._eof = False

    def _next(self, n: int) -> bytes:
        """Up to N bytes of body as they come; b'' at its end."""
        if self._eof:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                size = int(self._f.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._f.readline()
                    self._eof = True
                    return b""
                self._chunk_left = size
            data = self._f.read1(min(n, self._chunk_left))
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._f.readline()
        elif self._left is not None:
            data = self._f.read1(min(n, self._left)) if self._left else b""
            self._left -= len(data)
        else:
            data = self._f.read1(n)
        if not data:
            self._eof = True
        return data

    def read1(self, n: int = 65536) -> bytes:
        """What is available now, at most N bytes (b'' at the end)."""
        if self._buf:
            data, self._buf = self._buf[:n], self._buf[n:]
            return data
        return self._next(n)

    def read(self, n: int = -1) -> bytes:
        """N bytes (fewer only at the end), or everything with N < 0."""
        out = bytearray()
        while n < 0 or len(out) < n:
            data = self.read1(65536 if n < 0 else n - len(out))
            if not data:
                break
            out += data
        return bytes(out)

    def __iter__(self) -> Iterator[bytes]:
        """The body line by line."""
        while True:
            while b"\n" not in self._buf:
                data = self._next(65536)
                if not data:
                    if self._buf:
                        yield self._buf
                        self._buf = b""
                    return
                self._buf += data
            line, _, self._buf = self._buf.partition(b"\n")
            yield line + b"\n"

    def close(self) -> None:
        """Drop the connection."""
        self._f.close()
        self._sock.close()


def request(sock: socket.socket, method: str, target: str, headers: dict[str, str],
            body: bytes | BinaryIO | None) -> Response:
    """Send one request on SOCK (a file body goes chunked) and read the response head."""
    head = [f"{method} {target} HTTP/1.1", "Host: localhost", "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items())]
    if isinstance(body, bytes):
        head.append(f"Content-Length: {len(body)}")
    elif body is not None:
        head.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if isinstance(body, bytes):
        sock.sendall(body)
    elif body is not None:
        while chunk := body.read(1 << 20):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
    return Response(sock, method)


def error_message(resp: Response) -> str:
    """docker's {"message": ...} of an error response, or its text."""
    text = resp.read()
    try:
        from .fastjson import loads

        message: Any = loads(text)["message"]
        return str(message)
    except (ValueError, KeyError, TypeError):
        return text.decode(errors="replace").strip() or resp.reason
