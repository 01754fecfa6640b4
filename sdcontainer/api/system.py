"""Docker Engine API: _ping, version, info, events."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import AsyncIterator

from .. import __version__
from ..engine import views
from ..engine.core import Engine
from ..errors import InvalidArgument
from ..util import fileio
from . import filters
from .http import Request, Response, Router, Stream, json_response

API_VERSION = "1.43"
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
        r.add("GET", "/system/df", self.df)

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
        images = await asyncio.to_thread(self.engine.images.list)
        paused = sum(1 for c in cs if c.running and c.state.paused)
        running = sum(1 for c in cs if c.running) - paused
        return json_response({
            "ID": _machine_id(), "Containers": len(cs), "ContainersRunning": running,
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
            "DefaultRuntime": "sdcontainer", "SecurityOptions": [], "Images": len(images),
            # The rest of the fields docker-py and the docker CLI read, as dockerd fills
            # them on a host outside a swarm.
            "Debug": False, "ExperimentalBuild": False, "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                        "Authorization": None, "Log": ["journald"]},
            "MemoryLimit": True, "SwapLimit": True, "KernelMemoryTCP": False,
            "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
            "PidsLimit": True, "OomKillDisable": False, "IPv4Forwarding": True,
            "BridgeNfIptables": False, "BridgeNfIp6tables": False, "NFd": _open_fds(),
            "NGoroutines": 0, "SystemTime": _now(), "LoggingDriver": "journald",
            "NEventsListener": 0, "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                               "AllowNondistributableArtifactsHostnames": [],
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                               "Mirrors": []},
            "GenericResources": None, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Labels": [], "LiveRestoreEnabled": True, "Isolation": "",
            "InitBinary": "tini", "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""}, "InitCommit": {"ID": "", "Expected": ""},
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "Warnings": None,
        })

    async def df(self, req: Request) -> Response:
        """GET /system/df: what images, containers and volumes take (a walk: in a thread)."""
        from . import images as image_api

        # API 1.42: `type` (repeatable) picks what to compute; none means everything.
        kinds = set(req.query.get("type", [])) or {"container", "image", "volume",
                                                  "build-cache"}
        unknown = kinds - {"container", "image", "volume", "build-cache"}
        if unknown:
            raise InvalidArgument(f"unknown object type: {sorted(unknown)[0]}")
        cs = list(self.engine.containers.values())
        imgs = await asyncio.to_thread(self.engine.images.list)
        users: dict[str, int] = {}
        for c in cs:
            users[c.config.image_id] = users.get(c.config.image_id, 0) + 1
        sizes = {i.id: i.size for i in imgs}
        image_rows = []
        for i in imgs:
            row = image_api.summary(i)
            row.update({"Containers": users.get(i.id, 0), "SharedSize": 0})
            image_rows.append(row)
        container_rows = []
        for c in cs if "container" in kinds else []:
            row = views.summary(c, self.engine.restarting(c))
            row.update(await asyncio.to_thread(views.sizes, c, sizes.get(c.config.image_id, 0)))
            container_rows.append(row)
        volume_rows = []
        vols = await asyncio.to_thread(self.engine.volumes.all) if "volume" in kinds else []
        for v in vols:
            row = v.to_json()
            used = await asyncio.to_thread(fileio.du, self.engine.volumes.mountpoint(v))
            row["UsageData"] = {"Size": used, "RefCount": sum(
                1 for c in cs if any(m.type == "volume" and m.name == v.name
                                     for m in c.config.mounts))}
            volume_rows.append(row)
        out: dict[str, object] = {"BuildCache": []}
        if "image" in kinds:
            out.update({"LayersSize": sum(sizes.values()), "Images": image_rows})
        if "container" in kinds:
            out["Containers"] = container_rows
        if "volume" in kinds:
            out["Volumes"] = volume_rows
        return json_response(out)

    async def events(self, req: Request) -> Stream:
        queue = self.engine.events.subscribe()
        keep = filters.event_filter(req.arg("filters"))
        since, until = filters.event_time(req.arg("since")), filters.event_time(req.arg("until"))

        async def chunks() -> AsyncIterator[bytes]:
            try:
                if since is not None:  # replay, then go on live (as docker does)
                    for event in self.engine.events.since(since, until):
                        if keep(event):
                            yield json.dumps(event).encode() + b"\n"
                while True:
                    timeout = None
                    if until is not None:
                        timeout = max(until / 1e9 - time.time(), 0)
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        return
                    if since is not None and event["timeNano"] < since:
                        continue  # already replayed
                    if keep(event):
                        yield json.dumps(event).encode() + b"\n"
            finally:
                self.engine.events.unsubscribe(queue)

        return Stream(chunks())


def arch() -> str:
    """Go's name for this machine's architecture."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _machine_id() -> str:
    """A stable daemon ID (docker-py's tests want one): the host's machine-id."""
    try:
        with open("/etc/machine-id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"


