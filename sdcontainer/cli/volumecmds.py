"""`volume create|ls|inspect|rm|prune`: docker's verbs over the /volumes API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from . import formatting
from .client import Client


def cmd_volume_create(client: Client, ns: argparse.Namespace) -> int:
    answer = client.call("POST", "/volumes/create", body={
        "Name": ns.name or "", "Driver": ns.driver,
        "DriverOpts": formatting.key_values(ns.opt, "option"),
        "Labels": formatting.key_values(ns.label, "label")})
    print(answer["Name"])
    return 0


def cmd_volume_ls(client: Client, ns: argparse.Namespace) -> int:
    query = {"filters": formatting.filters_arg(ns.filter)}
    volumes = client.call("GET", "/volumes", query)["Volumes"]
    volumes = sorted(volumes or [], key=lambda v: v["Name"])
    if ns.quiet:
        for v in volumes:
            print(v["Name"])
    elif ns.format:
        for v in volumes:
            print(formatting.render(ns.format, row(v)))
    else:
        print(formatting.table(["DRIVER", "VOLUME NAME"], [[v["Driver"], v["Name"]]
                                                          for v in volumes]))
    return 0


def row(v: dict[str, Any]) -> dict[str, Any]:
    """The fields `volume ls --format` knows, as docker names them."""
    labels = v.get("Labels") or {}
    return {**v, "Labels": ",".join(f"{k}={val}" for k, val in labels.items()),
            "Links": "N/A", "Size": "N/A"}


def cmd_volume_inspect(client: Client, ns: argparse.Namespace) -> int:
    return formatting.inspect_each(client, "/volumes/{}", ns.volumes, ns.format)


def cmd_volume_rm(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.volumes, lambda n: client.call(
        "DELETE", f"/volumes/{n}", {"force": ns.force or None}))


def cmd_volume_prune(client: Client, ns: argparse.Namespace) -> int:
    if not ns.force:
        what = "all local volumes" if ns.all else "all anonymous local volumes"
        print(f"WARNING! This will remove {what} not used by at least one "
              "container.\nAre you sure you want to continue? [y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    # Explicit either way: our client speaks API 1.41, which defaults to all volumes.
    wanted = [*ns.filter, f"all={'true' if ns.all else 'false'}"]
    answer = client.call("POST", "/volumes/prune", {"filters": formatting.filters_arg(wanted)})
    gone = answer.get("VolumesDeleted") or []
    if gone:
        print("Deleted Volumes:\n" + "\n".join(gone) + "\n")
    print(f"Total reclaimed space: {formatting.human_size(answer.get('SpaceReclaimed') or 0, 4)}")
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`volume` with its sub-verbs, into the parser."""
    vol = sub.add_parser("volume", help="Manage volumes")
    vsub = vol.add_subparsers(dest="volume_verb", metavar="COMMAND", required=True)
    v = verb("create", cmd_volume_create, "Create a volume", parent=vsub)
    v.add_argument("-d", "--driver", default="local", help="volume driver name")
    v.add_argument("-o", "--opt", action="append", default=[], help="driver option KEY=VALUE")
    v.add_argument("--label", action="append", default=[],
                   help="set metadata for a volume (KEY=VALUE)")
    v.add_argument("name", nargs="?")
    v = verb("ls", cmd_volume_ls, "List volumes", parent=vsub, aliases=["list"])
    v.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    v.add_argument("--format", help="format output: table, json or a Go template")
    v.add_argument("-f", "--filter", action="append", default=[],
                   help="name=, label=, dangling=true|false, driver=")
    v = verb("inspect", cmd_volume_inspect, "Display detailed information on volumes",
             parent=vsub)
    v.add_argument("-f", "--format", help="format output using a Go template")
    v.add_argument("volumes", nargs="+")
    v = verb("rm", cmd_volume_rm, "Remove one or more volumes", parent=vsub, aliases=["remove"])
    v.add_argument("-f", "--force", action="store_true",
                   help="force the removal of one or more volumes")
    v.add_argument("volumes", nargs="+")
    v = verb("prune", cmd_volume_prune, "Remove unused local volumes", parent=vsub)
    v.add_argument("-a", "--all", action="store_true",
                   help="remove all unused volumes, not just anonymous ones")
    v.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    v.add_argument("--filter", action="append", default=[], help="label=, label!=")
