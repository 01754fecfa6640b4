"""System verbs: version, info, events, stats."""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import SdcError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any

    from .client import Client

STATS_HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STATS_DEFAULT = ("table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}"
                 "\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}")


def client_commit() -> str:
    """buildinfo.commit(), without its pathlib import when the release build says it."""
    import importlib

    try:
        return str(importlib.import_module(f"{__package__.rpartition('.')[0]}._build").COMMIT)
    except ImportError:
        from ..buildinfo import commit

        return commit()


def cmd_version(client: Client, ns: argparse.Namespace) -> int:
    client_info = {"Version": __version__, "ApiVersion": "1.41", "GitCommit": client_commit()}
    server: dict[str, Any] | None = None
    error = ""
    try:
        server = client.call("GET", "/version")
    except SdcError as e:
        error = str(e)
    if ns.format:
        from . import formatting

        data = {"Client": client_info, "Server": server}
        text = formatting.render(ns.format, data) if ns.format == "json" else \
            formatting.execute(formatting.template(ns.format), data)
        print(text)
    else:
        print(f"Client:\n Version:    {__version__}\n API version: 1.41\n"
              f" Git commit: {client_info['GitCommit']}")
        if server is not None:
            print(f"\nServer:\n Engine:\n  Version:    {server['Version']}\n  API version: "
                  f"{server['ApiVersion']} (minimum version {server['MinAPIVersion']})\n"
                  f"  OS/Arch:    {server['Os']}/{server['Arch']}\n"
                  f"  Kernel:     {server['KernelVersion']}")
    if error:
        print(error, file=sys.stderr)
        return 1
    return 0


def cmd_info(client: Client, ns: argparse.Namespace) -> int:
    from . import formatting

    info = client.call("GET", "/info")
    if ns.format:
        print(formatting.render(ns.format, info) if ns.format == "json" else
              formatting.execute(formatting.template(ns.format), info))
        return 0
    for key in ("Containers", "ContainersRunning", "ContainersStopped", "ServerVersion",
                "CgroupDriver", "CgroupVersion", "KernelVersion", "OperatingSystem", "NCPU",
                "DockerRootDir"):
        print(f" {key}: {info.get(key)}")
    return 0


def event_line(e: dict[str, Any]) -> str:
    """docker's default line for an event: local time to the nanosecond, type, action,
    actor, and its attributes sorted."""
    import datetime

    nano = e.get("timeNano") or int(e.get("time", 0)) * 1_000_000_000
    when = datetime.datetime.fromtimestamp(nano // 1_000_000_000).astimezone()
    offset = when.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nano % 1_000_000_000:09d}{zone}"
    actor = e.get("Actor") or {}
    line = f"{stamp} {e.get('Type', '')} {e.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def cmd_events(client: Client, ns: argparse.Namespace) -> int:
    from . import formatting
    from .containercmds import since_arg

    tmpl = None
    if ns.format and ns.format != "json":
        tmpl = formatting.template(ns.format.replace("\\t", "\t").replace("\\n", "\n"))
    filters = formatting.filters_arg(ns.filter + ([f"container={ns.filter_container}"]
                                                  if ns.filter_container else []))
    for e in client.json_lines("GET", "/events", {
            "filters": filters, "since": since_arg(ns.since), "until": since_arg(ns.until)}):
        if ns.format == "json":
            from .gotemplate import to_json

            print(to_json(e), flush=True)
        elif tmpl is not None:
            print(formatting.execute(tmpl, e), flush=True)
        else:
            print(event_line(e), flush=True)
    return 0


def binary_size(n: float) -> str:
    """go-units' BytesSize: 1.5MiB."""
    from .formatting import human_size

    return human_size(n, 4, binary=True)


def decimal_size(n: float) -> str:
    """go-units' HumanSizeWithPrecision(n, 3): 1.2kB."""
    from .formatting import human_size

    return human_size(n, 3)


def stats_row(s: dict[str, Any], prev: dict[str, Any] | None, no_trunc: bool) -> dict[str, Any]:
    """The fields of `stats --format` from one stats object, as docker's CLI computes them:
    CPU % from the delta to the previous reading, memory without the page cache."""
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    if not pre.get("system_cpu_usage") and prev is not None:
        pre = prev.get("cpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - \
        (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or
                                         []) or 1
    cpu_pct = cpu_delta / sys_delta * ncpu * 100 if cpu_delta > 0 and sys_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    stats = mem.get("stats") or {}
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    usage = max(mem.get("usage", 0) - (cache if cache < mem.get("usage", 0) else 0), 0)
    limit = mem.get("limit", 0)
    rx = sum(n.get("rx_bytes", 0) for n in (s.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (s.get("networks") or {}).values())
    blk_r = blk_w = 0
    for entry in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            blk_r += entry.get("value", 0)
        elif op == "write":
            blk_w += entry.get("value", 0)
    cid = s.get("id", "")
    return {
        "Container": cid if no_trunc else cid[:12], "ID": cid if no_trunc else cid[:12],
        "Name": str(s.get("name", "")).lstrip("/") or "--",
        "CPUPerc": f"{cpu_pct:.2f}%",
        "MemUsage": f"{binary_size(usage)} / {binary_size(limit)}",
        "MemPerc": f"{usage / limit * 100 if limit else 0:.2f}%",
        "NetIO": f"{decimal_size(rx)} / {decimal_size(tx)}",
        "BlockIO": f"{decimal_size(blk_r)} / {decimal_size(blk_w)}",
        "PIDs": str((s.get("pids_stats") or {}).get("current", 0)),
    }


def cmd_stats(client: Client, ns: argparse.Namespace) -> int:
    from . import formatting

    names = ns.containers
    if not names:
        names = [c["Id"] for c in client.call("GET", "/containers/json",
                                               {"all": ns.all or None})]
    fmt = ns.format
    if ns.no_stream:
        rows = []
        for n in names:
            s = client.call("GET", f"/containers/{n}/stats", {"stream": False})
            rows.append(stats_row(s, None, ns.no_trunc))
        formatting.emit(formatting.listing(fmt, rows, STATS_HEADERS, STATS_DEFAULT))
        return 0
    return stream_stats(client, names, fmt, ns.no_trunc)


def stream_stats(client: Client, names: list[str], fmt: str | None, no_trunc: bool) -> int:
    """Redraw the table each time every container has sent a new reading."""
    import threading

    from . import formatting

    latest: dict[str, dict[str, Any]] = {}
    cond = threading.Condition()

    def follow(name: str) -> None:
        prev = None
        try:
            for s in client.json_lines("GET", f"/containers/{name}/stats", {"stream": True}):
                row = stats_row(s, prev, no_trunc)
                prev = s
                with cond:
                    latest[name] = row
                    cond.notify_all()
        except SdcError:
            pass
        with cond:
            latest.pop(name, None)
            names.remove(name)
            cond.notify_all()

    for n in list(names):
        threading.Thread(target=follow, args=(n,), daemon=True).start()
    tty = sys.stdout.isatty()
    while True:
        with cond:
            cond.wait()
            if not names:
                return 0
            if len(latest) < len(names):
                continue
            rows = [latest[n] for n in names if n in latest]
            latest.clear()
        text = formatting.listing(fmt, rows, STATS_HEADERS, STATS_DEFAULT)
        formatting.emit(("\x1b[2J\x1b[H" if tty else "") + text)


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """version, info, events, stats."""
    v = verb("version", cmd_version, "Show the sdcontainer version information")
    v.add_argument("-f", "--format", help="format output using a Go template")
    v = verb("info", cmd_info, "Display system-wide information")
    v.add_argument("-f", "--format", help="format output using a Go template")
    v = verb("events", cmd_events, "Get real time events from the server")
    v.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output based on conditions provided (key=value)")
    v.add_argument("--filter-container", help="only events of this container")
    v.add_argument("--since", help="show all events created since timestamp")
    v.add_argument("--until", help="stream events until this timestamp")
    v.add_argument("--format", help="format output using a Go template, or json")
    v = verb("stats", cmd_stats, "Display a live stream of container(s) resource usage")
    v.add_argument("-a", "--all", action="store_true",
                   help="show all containers (default shows just running)")
    v.add_argument("--no-stream", action="store_true",
                   help="disable streaming stats and only pull the first result")
    v.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    v.add_argument("--format", help="format output: table, json or a Go template")
    v.add_argument("containers", nargs="*")
