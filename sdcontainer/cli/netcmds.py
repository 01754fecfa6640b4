"""`network ...` and `port`: docker's verbs over the /networks API and inspect."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from . import formatting
from .client import Client, Usage

Handler = Callable[[Client, argparse.Namespace], int]


def ipam_configs(subnets: list[str], gateways: list[str], ranges: list[str],
                 aux: list[str]) -> list[dict[str, Any]]:
    """docker's --subnet/--gateway/--ip-range/--aux-address grammar: each gateway, range
    and auxiliary address goes to the one subnet that contains it."""
    import ipaddress

    def net(value: str, flag: str) -> Any:
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise Usage(f"invalid {flag} {value!r}: expected CIDR notation") from None

    def addr(value: str, flag: str) -> Any:
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            raise Usage(f"invalid {flag} {value!r}: expected an IP address") from None

    IPNETS = (ipaddress.IPv4Network, ipaddress.IPv6Network)
    if not subnets and (gateways or ranges or aux):
        raise Usage("every ip-range or gateway must have a corresponding subnet")
    configs = [{"Subnet": sub, "_net": net(sub, "subnet")} for sub in subnets]

    def home(what: str, value: str, contained: Any) -> dict[str, Any]:
        for c in configs:
            if contained.version != c["_net"].version:
                continue
            if (contained.subnet_of(c["_net"]) if isinstance(contained, IPNETS)
                    else contained in c["_net"]):
                return c
        raise Usage(f"no matching subnet for {what} {value}")

    for r in ranges:
        c = home("range", r, net(r, "ip-range"))
        if "IPRange" in c:
            raise Usage(f"cannot configure multiple ranges ({r}, {c['IPRange']}) "
                        f"on the same subnet ({c['Subnet']})")
        c["IPRange"] = r
    for g in gateways:
        c = home("gateway", g, addr(g, "gateway"))
        if "Gateway" in c:
            raise Usage(f"cannot configure multiple gateways ({g}, {c['Gateway']}) "
                        f"for the same subnet ({c['Subnet']})")
        c["Gateway"] = g
    for a in aux:
        key, sep, value = a.partition("=")
        if not sep or not key:
            raise Usage(f"invalid aux-address {a!r}: expected HOST=IP")
        c = home("aux-address", value, addr(value, "aux-address"))
        c.setdefault("AuxiliaryAddresses", {})[key] = value
    for c in configs:
        del c["_net"]
    return configs


def cmd_network_create(client: Client, ns: argparse.Namespace) -> int:
    configs = ipam_configs(ns.subnet, ns.gateway, ns.ip_range, ns.aux_address)
    body: dict[str, Any] = {
        "Name": ns.name, "Driver": ns.driver, "Internal": ns.internal,
        "Attachable": ns.attachable, "EnableIPv6": ns.ipv6,
        "Options": formatting.key_values(ns.opt, "--opt"),
        "Labels": formatting.key_values(ns.label, "--label")}
    if configs or ns.ipam_opt or ns.ipam_driver != "default":
        body["IPAM"] = {"Driver": ns.ipam_driver, "Config": configs,
                        "Options": formatting.key_values(ns.ipam_opt, "--ipam-opt")}
    answer = client.call("POST", "/networks/create", body=body)
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


def natural_key(text: str) -> list[Any]:
    """docker's natural order: "n2" before "n10", "80/tcp" before "5353/udp"."""
    import re

    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]


def cmd_network_ls(client: Client, ns: argparse.Namespace) -> int:
    nets = client.call("GET", "/networks", {"filters": formatting.filters_arg(ns.filter)})
    nets.sort(key=lambda n: natural_key(n.get("Name", "")))  # as docker lists them
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
    ipam = {k: v for k, v in (("IPv4Address", ns.ip), ("IPv6Address", ns.ip6),
                              ("LinkLocalIPs", ns.link_local_ip or None)) if v}
    client.call("POST", f"/networks/{ns.network}/connect", body={
        "Container": ns.container, "EndpointConfig": {
            "Aliases": ns.alias or None, "Links": ns.link or None,
            "IPAMConfig": ipam or None,
            "DriverOpts": formatting.key_values(ns.driver_opt, "--driver-opt") or None}})
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
    lines = [f"{key} -> {b['HostIp']}:{b['HostPort']}"
             for key, bindings in ports.items() for b in bindings or []]
    # docker sorts them naturally: 80/tcp before 5353/udp
    for line in sorted(lines, key=natural_key):
        print(line)
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`network` with its sub-verbs, and `port`, into the parser."""
    v = verb("port", cmd_port, "List port mappings or a specific mapping for the container")
    v.add_argument("container")
    v.add_argument("port", nargs="?")
    net = sub.add_parser("network", help="Manage networks")
    nsub = net.add_subparsers(dest="network_verb", metavar="COMMAND", required=True)
    v = verb("create", cmd_network_create, "Create a network", parent=nsub)
    v.add_argument("-d", "--driver", default="bridge", help="driver to manage the network")
    v.add_argument("--subnet", action="append", default=[],
                   help="subnet in CIDR format, e.g. 10.89.0.0/24 (repeat for IPv4 and IPv6)")
    v.add_argument("--gateway", action="append", default=[],
                   help="gateway of the subnet that contains it")
    v.add_argument("--ip-range", action="append", default=[],
                   help="allocate container addresses from a sub-range (CIDR) of a subnet")
    v.add_argument("--aux-address", action="append", default=[],
                   help="an address the network must not hand out (HOST=IP)")
    v.add_argument("--ipv6", action="store_true",
                   help="enable IPv6 (needs an IPv6 --subnet; reachable inside the network)")
    v.add_argument("--internal", action="store_true",
                   help="restrict external access to the network")
    v.add_argument("--attachable", action="store_true",
                   help="accepted for docker compatibility (every network is attachable)")
    v.add_argument("-o", "--opt", action="append", default=[],
                   help="driver option (KEY=VALUE), e.g. com.docker.network.bridge.name=br0")
    v.add_argument("--ipam-driver", default="default", help="IP address management driver")
    v.add_argument("--ipam-opt", action="append", default=[],
                   help="IPAM driver option (KEY=VALUE)")
    v.add_argument("--label", action="append", default=[],
                   help="set metadata on the network (KEY=VALUE)")
    v.add_argument("name")
    v = verb("ls", cmd_network_ls, "List networks", parent=nsub, aliases=["list"])
    v.add_argument("-q", "--quiet", action="store_true", help="only display network IDs")
    v.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    v.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output based on conditions provided (key=value)")
    v.add_argument("--format", help="format output: table, json or a Go template")
    v = verb("inspect", cmd_network_inspect, "Display detailed information on networks",
             parent=nsub)
    v.add_argument("-f", "--format", help="format output using a Go template")
    v.add_argument("networks", nargs="+")
    v = verb("rm", cmd_network_rm, "Remove one or more networks", parent=nsub, aliases=["remove"])
    v.add_argument("networks", nargs="+")
    v = verb("prune", cmd_network_prune, "Remove all unused networks", parent=nsub)
    v.add_argument("-f", "--force", action="store_true",
                   help="do not prompt for confirmation")
    v = verb("connect", cmd_network_connect, "Connect a container to a network", parent=nsub)
    v.add_argument("--alias", action="append", default=[],
                   help="add a network-scoped alias for the container")
    v.add_argument("--ip", help="IPv4 address for the container in this network")
    v.add_argument("--ip6", help="IPv6 address for the container in this network")
    v.add_argument("--link", action="append", default=[],
                   help="add a link to another container (NAME[:ALIAS])")
    v.add_argument("--link-local-ip", action="append", default=[],
                   help="add a link-local address for the container")
    v.add_argument("--driver-opt", action="append", default=[],
                   help="driver option for the endpoint (KEY=VALUE)")
    v.add_argument("network")
    v.add_argument("container")
    v = verb("disconnect", cmd_network_disconnect, "Disconnect a container from a network",
             parent=nsub)
    v.add_argument("-f", "--force", action="store_true",
                   help="force the container to disconnect from the network")
    v.add_argument("network")
    v.add_argument("container")
