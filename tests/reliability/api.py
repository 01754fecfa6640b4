"""A raw HTTP client on the daemon's unix socket: fast loops and fuzzing skip the CLI."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from tests.integration.conftest import SOCKET


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(SOCKET)
        self.sock = s


def call(conn: UnixHTTP, method: str, path: str, body: Any = None,
         raw: bytes | None = None) -> tuple[int, bytes]:
    """One request; (status, body)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()
