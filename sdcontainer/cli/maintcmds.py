"""`rename`, `update`, `container prune`, `system df` and `system prune`, as docker's CLI
prints them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from . import formatting
from .client import Client


def cmd_rename(client: Client, ns: argparse.Namespace) -> int:
    client.call("POST", f"/containers/{ns.container}/rename", {"name": ns.new_name})
    return 0


def cmd_update(client: Client, ns: argparse.Namespace) -> int:
    from .options import parse_bytes

    body: dict[str, Any] = {}
    for key, value in (("Memory", ns.memory), ("MemorySwap", ns.memory_swap)):
        if value is not None:
            body[key] = -1 if value == "-1" else parse_bytes(value)
    if ns.cpus is not None:
        try:
            body["NanoCpus"] = int(float(ns.cpus) * 1e9)
        except ValueError:
            from ..errors import InvalidArgument

            raise InvalidArgument(f"invalid argument {ns.cpus!r} for --cpus") from None
    for key, value in (("CpuShares", ns.cpu_shares), ("CpuQuota", ns.cpu_quota),
                       ("CpuPeriod", ns.cpu_period), ("PidsLimit", ns.pids_limit)):
        if value is not None:
            body[key] = value
    if ns.restart is not None:
        name, _, count = ns.restart.partition(":")
        body["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count or 0)
                                 if count.isdigit() else count or 0}
    if not body:
        from .client import Usage

        raise Usage("you must provide one or more flags when using this command")
    return formatting.each(ns.containers, lambda c: client.call(
        "POST", f"/containers/{c}/update", None, body))


def confirmed(warning: str) -> bool:
    """docker's prune prompt: WARNING, then y/N on stdin."""
    print(f"WARNING! This will remove:\n{warning}\n\nAre you sure you want to continue? [y/N] ",
          end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _size(n: int) -> str:
    return formatting.human_size(n, 4)


def _reclaimed(n: int) -> str:
    return f"Total reclaimed space: {_size(n)}"


def cmd_container_prune(client: Client, ns: argparse.Namespace) -> int:
    if not ns.force and not confirmed("  - all stopped containers"):
        return 0
    answer = client.call("POST", "/containers/prune",
                         {"filters": formatting.filters_arg(ns.filter)})
    gone = answer.get("ContainersDeleted") or []
    if gone:
        print("Deleted Containers:\n" + "".join(f"{c}\n" for c in gone))
    print(_reclaimed(answer.get("SpaceReclaimed") or 0))
    return 0


def cmd_system_prune(client: Client, ns: argparse.Namespace) -> int:
    what = ["  - all stopped containers", "  - all networks not used by at least one container",
            *(["  - all anonymous volumes not used by at least one container"]
              if ns.volumes else []),
            "  - all images without at least one container associated to them" if ns.all
            else "  - all dangling images",
            "  - unused build cache" if ns.all else "  - all dangling build cache"]
    if not ns.force and not confirmed("\n".join(what)):
        return 0
    total = 0
    answer = client.call("POST", "/containers/prune")
    total += answer.get("SpaceReclaimed") or 0
    if answer.get("ContainersDeleted"):
        print("Deleted Containers:\n" + "".join(f"{c}\n" for c in answer["ContainersDeleted"]))
    answer = client.call("POST", "/networks/prune")
    if answer.get("NetworksDeleted"):
        print("Deleted Networks:\n" + "".join(f"{n}\n" for n in answer["NetworksDeleted"]))
    if ns.volumes:
        # docker's --volumes: anonymous volumes only (API 1.42 and later).
        answer = client.call("POST", "/volumes/prune",
                             {"filters": formatting.filters_arg(["all=false"])})
        total += answer.get("SpaceReclaimed") or 0
        if answer.get("VolumesDeleted"):
            print("Deleted Volumes:\n" + "".join(f"{v}\n" for v in answer["VolumesDeleted"]))
    dangling = None if ns.all else formatting.filters_arg(["dangling=true"])
    answer = client.call("POST", "/images/prune",
                         {"filters": formatting.filters_arg(["dangling=false"]) if ns.all
                          else dangling})
    total += answer.get("SpaceReclaimed") or 0
    if answer.get("ImagesDeleted"):
        lines = "".join(f"{k.lower()}: {v}\n" for d in answer["ImagesDeleted"]
                        for k, v in d.items())
        print("Deleted Images:\n" + lines)
    answer = client.call("POST", "/build/prune", {"all": "1" if ns.all else None})
    total += answer.get("SpaceReclaimed") or 0
    if answer.get("CachesDeleted"):
        print("Deleted build cache objects:\n" + "".join(f"{c}\n" for c in
                                                          answer["CachesDeleted"]))
    print(_reclaimed(total))
    return 0


def _percent(part: int, whole: int) -> str:
    return f"{_size(part)} ({part * 100 // whole}%)" if whole > 0 \
        else _size(part)


DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_DEFAULT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def df_rows(df: dict[str, Any]) -> list[dict[str, str]]:
    """`system df`'s summary, reckoned as docker's CLI reckons it."""
    images = df.get("Images") or []
    size = df.get("LayersSize") or 0
    used = sum(i.get("Size", 0) - i.get("SharedSize", 0) for i in images
               if i.get("Containers") and i.get("Size", -1) != -1
               and i.get("SharedSize", -1) != -1)
    containers = df.get("Containers") or []
    rw = sum(c.get("SizeRw") or 0 for c in containers)
    stopped_rw = sum(c.get("SizeRw") or 0 for c in containers
                     if c.get("State") not in ("running", "paused"))
    volumes = df.get("Volumes") or []
    vsize = sum(max(v.get("UsageData", {}).get("Size", 0), 0) for v in volumes)
    vfree = sum(max(v.get("UsageData", {}).get("Size", 0), 0) for v in volumes
                if not v.get("UsageData", {}).get("RefCount"))
    cache = df.get("BuildCache") or []
    csize = sum(b.get("Size") or 0 for b in cache if not b.get("Shared"))
    cfree = sum(b.get("Size") or 0 for b in cache if not b.get("InUse") and not b.get("Shared"))
    rows = [
        ["Images", str(len(images)), str(sum(1 for i in images if i.get("Containers"))),
         _size(size), _percent(size - used, size)],
        ["Containers", str(len(containers)),
         str(sum(1 for c in containers if c.get("State") in ("running", "paused"))),
         _size(rw), _percent(stopped_rw, rw)],
        ["Local Volumes", str(len(volumes)),
         str(sum(1 for v in volumes if v.get("UsageData", {}).get("RefCount"))),
         _size(vsize), _percent(vfree, vsize)],
        ["Build Cache", str(len(cache)), str(sum(1 for b in cache if b.get("InUse"))),
         _size(csize), _size(cfree)],
    ]
    return [dict(zip(DF_HEADERS, r, strict=True)) for r in rows]


def cmd_system_df(client: Client, ns: argparse.Namespace) -> int:
    df = client.call("GET", "/system/df")
    formatting.emit(formatting.listing(ns.format, df_rows(df), DF_HEADERS, DF_DEFAULT))
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`rename` and `update` at the top level; the prune and df verbs under the names
    `container prune`, `system df` and `system prune` map to (cli/main.py's GROUPS)."""
    v = verb("rename", cmd_rename, "Rename a container")
    v.description = (
        "Rename a container, running or not: ps, inspect, events and the hosts files of "
        "its user networks use the new name at once.  systemd units cannot be renamed, so "
        "a running container's scope and slice keep the old name (sdcontainer-OLD.scope, "
        "as systemctl, journalctl -u and machinectl show it) until the container next "
        "starts, as sdcontainer-NEW.scope; until it stops, no other container can take "
        "the old name.")
    v.add_argument("container", help="the container to rename")
    v.add_argument("new_name", help="its new name")
    v = verb("update", cmd_update, "Update configuration of one or more containers")
    v.add_argument("-m", "--memory", help="memory limit")
    v.add_argument("--memory-swap", help="swap limit equal to memory plus swap: -1 for "
                   "unlimited swap")
    v.add_argument("--cpus", help="number of CPUs")
    v.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    v.add_argument("--cpu-quota", type=int, help="limit CPU CFS (Completely Fair Scheduler) "
                   "quota")
    v.add_argument("--cpu-period", type=int, help="limit CPU CFS period")
    v.add_argument("--pids-limit", type=int, help="tune container pids limit (-1 for "
                   "unlimited)")
    v.add_argument("--restart", help="restart policy to apply when a container exits")
    v.add_argument("containers", nargs="+")
    v = verb("container-prune", cmd_container_prune, "Remove all stopped containers")
    v.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    v.add_argument("--filter", action="append", default=[],
                   help="provide filter values (e.g. 'until=<timestamp>')")
    v = verb("system-df", cmd_system_df, "Show sdcontainer disk usage")
    v.add_argument("--format", help="format output using a Go template, or 'table ...'")
    v = verb("system-prune", cmd_system_prune, "Remove unused data")
    v.add_argument("-a", "--all", action="store_true",
                   help="remove all unused images not just dangling ones")
    v.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    v.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
