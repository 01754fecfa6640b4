"""Helpers for the API tests: the real docker CLI, raw HTTP on the socket."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
from typing import Any

from tests.integration.conftest import SOCKET

DOCKER_HOST = f"unix://{SOCKET}"


def docker_bin() -> str:
    """The docker CLI (tools/install-deps puts one on PATH)."""
    path = shutil.which("docker") or "/usr/local/bin/docker"
    assert os.path.exists(path), "the docker CLI is missing: run tools/install-deps"
    return path


def docker_env(**extra: str) -> dict[str, str]:
    """An environment pointing docker clients at sdcontainerd's socket."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update({"DOCKER_HOST": DOCKER_HOST, "DOCKER_CONFIG": "/tmp/docker-config"}, **extra)
    return env


def docker(*args: str, check: bool = False, timeout: float = 60, input: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real docker CLI against sdcontainerd."""
    return subprocess.run([docker_bin(), *args], capture_output=True, text=True, check=check,
                          timeout=timeout, input=input, env=env or docker_env())


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the daemon's unix socket."""

    def __init__(self, path: str = SOCKET, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def api(method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    """One request; the status, the JSON body (or text) and the headers."""
    conn = UnixConnection()
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data,
                 headers={"Content-Type": "application/json"} if data else {})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()}
