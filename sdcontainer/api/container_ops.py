"""Docker Engine API: container rename, prune and stats.

Stats come from the container's own cgroup, the one systemd made for its
scope: memory, CPU time and pids, in the shape `docker stats` and docker-py
read (cgroup v2 files, or the v1 controllers on a hybrid host).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..engine.core import Engine
from ..engine.records import Container, validate_name
from ..errors import Conflict, InvalidArgument
from . import filters
from .http import Request, Response, Router, Stream, json_response

CGROUP_ROOT = Path("/sys/fs/cgroup")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ContainerOpsAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/containers/{id}/rename", self.rename)
        r.add("POST", "/containers/prune", self.prune)
        r.add("GET", "/containers/{id}/stats", self.stats)

    async def rename(self, req: Request) -> Response:
        c = self.engine.get(req.params["id"])
        new = validate_name(req.arg("name") or "").lstrip("/")
        if new == c.name:
            raise Conflict(f"Renaming a container with the same name as its current name: {new}")
        if any(o.name == new for o in self.engine.containers.values()):
            raise Conflict(f'Conflict. The container name "/{new}" is already in use')
        async with self.engine.lock(c):
            if c.running:
                # The scope (and its slice) is named after the container: systemd units
                # cannot be renamed, so a running container keeps its name until it stops.
                raise Conflict(f"cannot rename running container {c.name}: its systemd scope "
                               f"{c.scope} is named after it; stop it first")
            old, c.name = c.name, new
            try:
                await self.engine.save(c)
            except BaseException:
                c.name = old
                raise
        self.engine.events.emit("container", "rename", c, oldName=f"/{old}")
        return Response(204)

    async def prune(self, req: Request) -> Response:
        f = filters.parse(req.arg("filters"), ("label", "label!", "until"))
        until = parse_until(f.get("until", []))
        deleted = []
        for c in list(self.engine.containers.values()):
            if c.running or (f.get("label") and not filters.labels_match(c.config.labels,
                                                                            f["label"])):
                continue
            if f.get("label!") and filters.labels_match(c.config.labels, f["label!"]):
                continue
            if until is not None and created_ts(c) >= until:
                continue
            await self.engine.remove(c.id)
            deleted.append(c.id)
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": 0})

    async def stats(self, req: Request) -> Response | Stream:
        c = self.engine.get(req.params["id"])
        stream = req.flag("stream", True)
        one_shot = req.flag("one-shot", False)
        pre = empty_cpu() if not c.running else await asyncio.to_thread(sample, c)
        if not stream:
            if not one_shot and c.running:
                # As dockerd: two samples a second apart, so CPU % can be computed.
                await asyncio.sleep(1)
            now = await asyncio.to_thread(sample, c) if c.running else pre
            return json_response(stats_json(c, now, pre if not one_shot else empty_cpu()))

        async def chunks() -> AsyncIterator[bytes]:
            prev = empty_cpu()
            while True:
                now = await asyncio.to_thread(sample, c) if c.running else empty_cpu()
                yield json.dumps(stats_json(c, now, prev)).encode() + b"\n"
                prev = now
                if c.id not in self.engine.containers:
                    return
                await asyncio.sleep(1)

        return Stream(chunks())


def parse_until(values: list[str]) -> float | None:
    """The `until` filter: unix seconds or RFC 3339."""
    if not values:
        return None
    v = values[-1]
    with contextlib.suppress(ValueError):
        return float(v)
    try:
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidArgument(f"invalid until filter {v!r}") from None


def created_ts(c: Container) -> float:
    """C's creation time in unix seconds."""
    try:
        return datetime.datetime.fromisoformat(c.created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def cgroup_dirs(pid: int) -> dict[str, Path]:
    """Controller -> cgroup directory of process PID ('' for the unified hierarchy)."""
    dirs: dict[str, Path] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            rel = path.lstrip("/")
            if controllers == "":
                base = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() \
                    else CGROUP_ROOT / "unified"
                dirs[""] = base / rel
            elif not controllers.startswith("name="):
                for ctl in controllers.split(","):
                    dirs[ctl] = CGROUP_ROOT / controllers / rel
    return dirs


def read(path: Path) -> str:
    """A cgroup file's contents, or '' where it does not exist."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def keyed(text: str) -> dict[str, int]:
    """A 'key value' per line file (memory.stat, cpu.stat)."""
    result = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            result[key] = int(value)
    return result


def number(text: str, default: int = 0) -> int:
    """An integer file ('max' is DEFAULT)."""
    try:
        return int(text)
    except ValueError:
        return default


def system_cpu_ns() -> int:
    """Host CPU time so far, in ns, as docker computes it from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 1_000_000_000 // CLK_TCK


def empty_cpu() -> dict[str, Any]:
    """A sample with nothing in it (stopped containers, the first precpu)."""
    return {"cpu": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                  "usage_in_usermode": 0},
                    "throttling_data": {"periods": 0, "throttled_periods": 0,
                                        "throttled_time": 0}},
            "memory": {}, "pids": {}, "read": "0001-01-01T00:00:00Z"}


def sample(c: Container) -> dict[str, Any]:
    """Read C's cgroup now."""
    mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        dirs = cgroup_dirs(c.state.monitor_pid)
    except OSError:
        return empty_cpu()
    v2 = dirs.get("")
    memory: dict[str, Any]
    if "memory" in dirs:
        d = dirs["memory"]
        limit = number(read(d / "memory.limit_in_bytes"), mem_total)
        memory = {"usage": number(read(d / "memory.usage_in_bytes")),
                  "max_usage": number(read(d / "memory.max_usage_in_bytes")),
                  "limit": min(limit, mem_total), "stats": keyed(read(d / "memory.stat")),
                  "failcnt": number(read(d / "memory.failcnt"))}
    elif v2 is not None:
        memory = {"usage": number(read(v2 / "memory.current")),
                  "limit": number(read(v2 / "memory.max"), mem_total),
                  "stats": keyed(read(v2 / "memory.stat"))}
    else:
        memory = {}
    if "cpuacct" in dirs:
        d = dirs["cpuacct"]
        st = keyed(read(d / "cpuacct.stat"))
        per = [int(x) for x in read(d / "cpuacct.usage_percpu").split()]
        usage = {"total_usage": number(read(d / "cpuacct.usage")), "percpu_usage": per,
                 "usage_in_usermode": st.get("user", 0) * 1_000_000_000 // CLK_TCK,
                 "usage_in_kernelmode": st.get("system", 0) * 1_000_000_000 // CLK_TCK}
        thr = keyed(read(dirs.get("cpu", d) / "cpu.stat"))
    else:
        st = keyed(read(v2 / "cpu.stat")) if v2 is not None else {}
        usage = {"total_usage": st.get("usage_usec", 0) * 1000,
                 "usage_in_usermode": st.get("user_usec", 0) * 1000,
                 "usage_in_kernelmode": st.get("system_usec", 0) * 1000}
        thr = {"nr_periods": st.get("nr_periods", 0), "nr_throttled": st.get("nr_throttled", 0),
               "throttled_time": st.get("throttled_usec", 0) * 1000}
    pids_dir = dirs.get("pids", v2)
    pids = {"current": number(read(pids_dir / "pids.current")) if pids_dir else 0}
    if pids_dir is not None and read(pids_dir / "pids.max") not in ("", "max"):
        pids["limit"] = number(read(pids_dir / "pids.max"))
    cpu = {"cpu_usage": usage, "system_cpu_usage": system_cpu_ns(),
           "online_cpus": os.cpu_count() or 1,
           "throttling_data": {"periods": thr.get("nr_periods", 0),
                               "throttled_periods": thr.get("nr_throttled", 0),
                               "throttled_time": thr.get("throttled_time", 0)}}
    read_at = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    return {"cpu": cpu, "memory": memory, "pids": pids, "read": read_at}


def stats_json(c: Container, now: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
    """docker's stats object from two samples."""
    return {
        "read": now["read"], "preread": pre["read"], "id": c.id, "name": f"/{c.name}",
        "pids_stats": now["pids"], "cpu_stats": now["cpu"], "precpu_stats": pre["cpu"],
        "memory_stats": now["memory"], "num_procs": 0, "storage_stats": {},
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None},
        "networks": {},
    }
