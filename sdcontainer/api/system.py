"""Docker Engine API: _ping, version, info, events."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import AsyncIterator
from typing import Any

from .. import __version__
from ..engine.core import Engine
from .http import Request, Response, Router, Stream, json_response

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"


class SystemAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("GET", "/_ping", self.ping)
        r.add("HEAD", "/_ping", self.ping)
        r.add("GET", "/version", self.version)
        r.add("GET", "/info", self.info)
        r.add("GET", "/events", self.events)

    async def ping(self, req: Request) -> Response:
        body = b"OK" if req.method == "GET" else b""
        return Response(200, body, "text/plain; charset=utf-8",
                        {"Cache-Control": "no-cache, no-store, must-revalidate",
                         "Pragma": "no-cache"})

    async def version(self, req: Request) -> Response:
        uname = os.uname()
        return json_response({
            "Platform": {"Name": "sdcontainer"},
            "Components": [{"Name": "Engine", "Version": __version__,
                            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                        "Os": "linux", "Arch": arch()}}],
            "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
            "Arch": arch(), "KernelVersion": uname.release, "BuildTime": "",
        })

    async def info(self, req: Request) -> Response:
        cs = list(self.engine.containers.values())
        paused = sum(1 for c in cs if c.running and c.state.paused)
        running = sum(1 for c in cs if c.running) - paused
        return json_response({
            "ID": "", "Containers": len(cs), "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": len(cs) - running - paused, "Driver": "overlay",
            "CgroupDriver": "systemd",
            "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
            "OperatingSystem": platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
            if hasattr(platform, "freedesktop_os_release") else "Linux",
            "OSType": "linux", "Architecture": platform.machine(), "NCPU": os.cpu_count(),
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "Name": os.uname().nodename, "ServerVersion": __version__, "KernelVersion":
            os.uname().release, "DockerRootDir": "/var/lib/sdcontainer", "Runtimes": {},
            "DefaultRuntime": "sdcontainer", "SecurityOptions": [], "Images": 0,
        })

    async def events(self, req: Request) -> Stream:
        queue = self.engine.events.subscribe()
        filters: dict[str, Any] = json.loads(req.arg("filters") or "{}")
        until = req.arg("until")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    timeout = None
                    if until:
                        # docker's until is a unix time (RFC 3339 is converted by clients).
                        timeout = max(float(until) - time.time(), 0)
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        return
                    if matches(event, filters):
                        yield json.dumps(event).encode() + b"\n"
            finally:
                self.engine.events.unsubscribe(queue)

        return Stream(chunks())


def matches(event: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Docker's event filters (type, event, container) on EVENT."""
    def values(key: str) -> list[str]:
        v = filters.get(key)
        return list(v) if isinstance(v, (list, dict)) else []
    if values("type") and event["Type"] not in values("type"):
        return False
    if values("event") and event["Action"] not in values("event"):
        return False
    names = values("container")
    return not names or event["id"] in names or event["Actor"]["Attributes"].get("name") in names


def arch() -> str:
    """Go's name for this machine's architecture."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
