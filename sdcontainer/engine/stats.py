"""What a running container uses and runs, read from the cgroup systemd made for its scope.

Stats: memory, CPU time and pids, in the shapes `docker stats` and docker-py read
(cgroup v2 files, or the v1 controllers on a hybrid host).  Top: the host's `ps`,
keeping the rows of the scope's processes.  The API only formats these.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Conflict, InvalidArgument
from ..util import run
from .records import Container

CGROUP_ROOT = Path("/sys/fs/cgroup")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """One reading of a container's cgroup, each part in docker's stats shape."""

    cpu: dict[str, Any]
    memory: dict[str, Any] = field(default_factory=dict)
    pids: dict[str, Any] = field(default_factory=dict)
    read: str = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class TopTable:
    """`ps` output for a container's processes: the column titles and the rows."""

    titles: list[str]
    processes: list[list[str]]


async def sample_now(c: Container) -> Sample:
    """C's cgroup now (an empty sample if C is not running)."""
    return await asyncio.to_thread(sample, c) if c.running else empty_cpu()


async def top(c: Container, ps_args: str) -> TopTable:
    """`ps PS_ARGS` rows of C's processes."""
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    titles, rows = await asyncio.to_thread(top_table, c, ps_args)
    return TopTable(titles, rows)


def cgroup_dirs(pid: int) -> dict[str, Path]:
    """Controller -> the cgroup directory of process PID's own scope ('' for the unified
    hierarchy).

    On a hybrid host a v1 controller systemd does not account for the scope (cpuacct,
    often; memory without a limit) leaves the process in that hierarchy's root: reading
    it there would report the whole host, so such a controller is left out."""
    dirs: dict[str, Path] = {}
    v1: dict[str, str] = {}
    scope = ""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                base = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() \
                    else CGROUP_ROOT / "unified"
                dirs[""] = base / path.lstrip("/")
                scope = scope or path
            elif controllers == "name=systemd":
                scope = path
            elif not controllers.startswith("name="):
                for ctl in controllers.split(","):
                    v1[ctl] = f"{controllers}:{path}"
    for ctl, where in v1.items():
        mount, _, path = where.partition(":")
        if not scope or path == scope:
            dirs[ctl] = CGROUP_ROOT / mount / path.lstrip("/")
    return dirs


def rss_of(d: Path) -> int:
    """Resident memory of the processes in cgroup D, for a scope without a memory cgroup
    of its own."""
    total = 0
    for pid in read(d / "cgroup.procs").split():
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


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


def empty_cpu() -> Sample:
    """A sample with nothing in it (stopped containers, the first precpu)."""
    return Sample({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                 "usage_in_usermode": 0},
                   "throttling_data": {"periods": 0, "throttled_periods": 0,
                                       "throttled_time": 0}})


def sample(c: Container) -> Sample:
    """Read C's cgroup now."""
    try:
        dirs = cgroup_dirs(c.state.monitor_pid)
    except OSError:
        return empty_cpu()
    return sample_dirs(dirs, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def sample_dirs(dirs: dict[str, Path], mem_total: int) -> Sample:
    """A sample from the cgroup directories DIRS (cgroup_dirs: v1 controllers, '' for the
    unified hierarchy) of a host with MEM_TOTAL bytes of memory."""
    v2 = dirs.get("")
    memory: dict[str, Any]
    if "memory" in dirs:
        d = dirs["memory"]
        limit = number(read(d / "memory.limit_in_bytes"), mem_total)
        memory = {"usage": number(read(d / "memory.usage_in_bytes")),
                  "max_usage": number(read(d / "memory.max_usage_in_bytes")),
                  "limit": min(limit, mem_total), "stats": keyed(read(d / "memory.stat")),
                  "failcnt": number(read(d / "memory.failcnt"))}
    elif v2 is not None and (v2 / "memory.current").exists():
        memory = {"usage": number(read(v2 / "memory.current")),
                  "limit": min(number(read(v2 / "memory.max"), mem_total), mem_total),
                  "stats": keyed(read(v2 / "memory.stat"))}
    elif v2 is not None:
        memory = {"usage": rss_of(v2), "limit": mem_total, "stats": {}}
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
    return Sample(cpu, memory, pids, read_at)


def top_table(c: Container, ps_args: str) -> tuple[list[str], list[list[str]]]:
    """`ps PS_ARGS` on the host, keeping the rows of C's processes (not its monitor)."""
    pids = scope_pids(c) - {c.state.monitor_pid}
    out = run.run(["ps", *shlex.split(ps_args)]).stdout.decode(errors="replace").splitlines()
    if not out:
        return [], []
    titles = out[0].split()
    if "PID" not in titles:
        raise InvalidArgument(f"ps output has no PID column with options {ps_args!r}")
    col = titles.index("PID")
    rows = []
    for line in out[1:]:
        fields = line.split(None, len(titles) - 1)
        with contextlib.suppress(ValueError, IndexError):
            if int(fields[col]) in pids:
                rows.append(fields)
    return titles, rows


def scope_pids(c: Container) -> set[int]:
    """Every pid in C's scope, from the cgroup systemd made for it."""
    with open(f"/proc/{c.state.monitor_pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
        if controllers in ("", "name=systemd"):
            base = "/sys/fs/cgroup/unified" if controllers == "" else "/sys/fs/cgroup/systemd"
            for root in (base, "/sys/fs/cgroup"):
                with contextlib.suppress(OSError), open(f"{root}{path}/cgroup.procs") as f:
                    return {int(p) for p in f.read().split()}
    return set()
