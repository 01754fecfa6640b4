"""Docker's JSON for container networking: create fields in, NetworkSettings out."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument
from ..model.spec import EndpointSpec, PortMapping
from ..network import DEFAULT_NETWORK
from .wire import get, get_obj, get_str_list, get_str_map


def parse_port_bindings(bindings: dict[str, Any]) -> list[PortMapping]:
    """HostConfig.PortBindings {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}."""
    result = []
    for key, entries in bindings.items():
        port, _, proto = key.partition("/")
        if not port.isdigit():
            raise InvalidArgument(f"invalid container port {key!r} in PortBindings")
        for e in entries or [{}]:
            if not isinstance(e, dict):
                raise InvalidArgument("PortBindings entries must be objects")
            host_port = str(e.get("HostPort") or "0")
            first, _, last = host_port.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise InvalidArgument(f"invalid host port {host_port!r}")
            count = int(last) - int(first) + 1 if last else 1
            host_ip = str(e.get("HostIp") or "")
            result.append(PortMapping("" if host_ip == "0.0.0.0" else host_ip, int(first),
                                      int(port), proto or "tcp", max(count, 1)))
    return result


def parse_links(links: list[str]) -> list[str]:
    """HostConfig.Links: "name:alias" (the CLI) or "/name:/self/alias" (the legacy form)."""
    result = []
    for link in links:
        name, _, alias = link.partition(":")
        name, alias = name.lstrip("/"), alias.rsplit("/", 1)[-1]
        if not name:
            raise InvalidArgument(f"invalid link {link!r}")
        result.append(f"{name}:{alias or name}")
    return result


def parse_endpoint(network: str, ep: Any, where: str) -> EndpointSpec:
    """One EndpointSettings object (EndpointsConfig.NET at create, EndpointConfig at
    connect) as the engine's EndpointSpec; what sdcontainer cannot honour is refused."""
    if not isinstance(ep, dict):
        raise InvalidArgument(f"{where} must be an object")
    ipam = get_obj(ep, "IPAMConfig", where)
    return EndpointSpec(
        network=network,
        aliases=get_str_list(ep, "Aliases", where) or [],
        links=parse_links(get_str_list(ep, "Links", where) or []),
        ip=get(ipam, "IPv4Address", str, "", f"{where}IPAMConfig."),
        mac=get(ep, "MacAddress", str, "", where),
        driver_opts=get_str_map(ep, "DriverOpts", where),
        link_local_ips=get_str_list(ipam, "LinkLocalIPs", f"{where}IPAMConfig.") or [],
        ip6=get(ipam, "IPv6Address", str, "", f"{where}IPAMConfig."))


def create_fields(body: dict[str, Any], hc: dict[str, Any]) -> dict[str, Any]:
    """The networking fields of the engine's create input (a ContainerConfig)."""
    network = get(hc, "NetworkMode", str, "", "HostConfig.")
    endpoints = get_obj(get_obj(body, "NetworkingConfig"), "EndpointsConfig", "NetworkingConfig.")
    specs = []
    for net, ep in endpoints.items():
        if not network or network == "default":
            network = net
        # The docker CLI names the default network "default" here.
        specs.append(parse_endpoint(DEFAULT_NETWORK if net == "default" else net, ep,
                                    f"NetworkingConfig.EndpointsConfig.{net}."))
    return {
        "network_mode": "" if network == "default" else network,
        "publish": parse_port_bindings(get_obj(hc, "PortBindings", "HostConfig.")),
        "links": parse_links(get_str_list(hc, "Links", "HostConfig.") or []),
        "endpoints": specs,
        "dns": get_str_list(hc, "Dns", "HostConfig.") or [],
        "dns_search": get_str_list(hc, "DnsSearch", "HostConfig.") or [],
        "dns_options": get_str_list(hc, "DnsOptions", "HostConfig.") or [],
        "add_hosts": [h.replace("=", ":", 1) if ":" not in h.split("=")[0] and "=" in h else h
                      for h in get_str_list(hc, "ExtraHosts", "HostConfig.") or []],
        # The container-wide MacAddress (API < 1.44) is the first network's.
        "mac": get(body, "MacAddress", str, ""),
    }


def default_network(mode: str) -> str:
    """The network name a mode puts a container on (for summaries)."""
    return DEFAULT_NETWORK if mode in ("", "default") else mode
