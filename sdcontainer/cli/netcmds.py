"""`network ...` and `port`: docker's verbs over the /networks API and inspect."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from . import formatting
from .client import Client

Handler = Callable[[Client, argparse.Namespace], int]


def cmd_network_create(client: Client, ns: argparse.Namespace) -> int:
    ipam = {"Config": [{"Subnet": ns.subnet, **({"Gateway": ns.gateway} if ns.gateway else {})}]}
    answer = client.call("POST", "/networks/create", body={
        "Name": ns.name, "Driver": ns.driver, "Internal": ns.internal,
        "IPAM": ipam if ns.subnet else None,
        "Labels": dict(lbl.partition("=")[::2] for lbl in ns.label)})
    print(answer["Id"])
    return 0


NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                   "IPv6": "IPV6", "IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS",
                   "Label": "LABEL", "CreatedAt": "CREATED AT"}
NETWORK_DEFAULT = "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}"


def network_row(n: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    """The fields of `network ls --format`, as docker names them."""
    labels: dict[str, str] = n.get("Labels") or {}
    created = formatting.go_time(str(n.get("Created", "")))
    return {
        "ID": n["Id"] if no_trunc else n["Id"][:12], "Name": n.get("Name", ""),
        "Driver": n.get("Driver", ""), "Scope": n.get("Scope", ""),
        "IPv6": "true" if n.get("EnableIPv6") else "false",
        "IPv4": "true" if n.get("EnableIPv4") else "false",
        "Internal": "true" if n.get("Internal") else "false",
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "Label": lambda name: labels.get(name, ""), "CreatedAt": created}


def cmd_network_ls(client: Client, ns: argparse.Namespace) -> int:
    nets = client.call("GET", "/networks", {"filters": formatting.filters_arg(ns.filter)})
    if ns.quiet:
        formatting.emit("".join((n["Id"] if ns.no_trunc else n["Id"][:12]) + "\n"
                                for n in nets))
        return 0
    rows = [network_row(n, ns.no_trunc) for n in nets]
    formatting.emit(formatting.listing(ns.format, rows, NETWORK_HEADERS, NETWORK_DEFAULT))
    return 0


def cmd_network_inspect(client: Client, ns: argparse.Namespace) -> int:
    return formatting.inspect_each(client, "/networks/{}", ns.networks, ns.format)


def cmd_network_rm(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.networks, lambda n: client.call("DELETE", f"/networks/{n}"))


def cmd_network_prune(client: Client, ns: argparse.Namespace) -> int:
    gone = client.call("POST", "/networks/prune").get("NetworksDeleted") or []
    if gone:
        print("Deleted Networks:\n" + "\n".join(gone))
    return 0


def cmd_network_connect(client: Client, ns: argparse.Namespace) -> int:
    client.call("POST", f"/networks/{ns.network}/connect", body={
        "Container": ns.container, "EndpointConfig": {"Aliases": ns.alias or None}})
    return 0


def cmd_network_disconnect(client: Client, ns: argparse.Namespace) -> int:
    client.call("POST", f"/networks/{ns.network}/disconnect",
                body={"Container": ns.container, "Force": ns.force})
    return 0


def cmd_port(client: Client, ns: argparse.Namespace) -> int:
    info = client.call("GET", f"/containers/{ns.container}/json")
    ports: dict[str, Any] = info["NetworkSettings"].get("Ports") or {}
    if ns.port:
        key = ns.port if "/" in ns.port else f"{ns.port}/tcp"
        if key not in ports:
            print(f"Error: No public port '{key}' published for {ns.container}", file=sys.stderr)
            return 1
        for b in ports[key] or []:
            print(f"{b['HostIp']}:{b['HostPort']}")
        return 0
    for key, bindings in sorted(ports.items()):
        for b in bindings or []:
            print(f"{key} -> {b['HostIp']}:{b['HostPort']}")
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`network` with its sub-verbs, and `port`, into the parser."""
    v = verb("port", cmd_port, "List port mappings or a specific mapping for the container")
    v.add_argument("container")
    v.add_argument("port", nargs="?")
    net = sub.add_parser("network", help="Manage networks")
    nsub = net.add_subparsers(dest="network_verb", metavar="COMMAND", required=True)
    v = verb("create", cmd_network_create, "Create a network", parent=nsub)
    v.add_argument("-d", "--driver", default="bridge")
    v.add_argument("--subnet")
    v.add_argument("--gateway")
    v.add_argument("--internal", action="store_true")
    v.add_argument("--label", action="append", default=[])
    v.add_argument("name")
    v = verb("ls", cmd_network_ls, "List networks", parent=nsub, aliases=["list"])
    v.add_argument("-q", "--quiet", action="store_true")
    v.add_argument("--no-trunc", action="store_true")
    v.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output based on conditions provided (key=value)")
    v.add_argument("--format", help="format output: table, json or a Go template")
    v = verb("inspect", cmd_network_inspect, "Display detailed information on networks",
             parent=nsub)
    v.add_argument("-f", "--format")
    v.add_argument("networks", nargs="+")
    v = verb("rm", cmd_network_rm, "Remove one or more networks", parent=nsub, aliases=["remove"])
    v.add_argument("networks", nargs="+")
    v = verb("prune", cmd_network_prune, "Remove all unused networks", parent=nsub)
    v.add_argument("-f", "--force", action="store_true")
    v = verb("connect", cmd_network_connect, "Connect a container to a network", parent=nsub)
    v.add_argument("--alias", action="append", default=[])
    v.add_argument("network")
    v.add_argument("container")
    v = verb("disconnect", cmd_network_disconnect, "Disconnect a container from a network",
             parent=nsub)
    v.add_argument("-f", "--force", action="store_true")
    v.add_argument("network")
    v.add_argument("container")
