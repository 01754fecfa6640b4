"""The engine's side of networking: a container's config into an AttachRequest,
an Attachment into what the launcher needs (a netns path and /etc files).

Network modes as docker names them: "bridge" (the default network), a
user-defined network's name, "none", "host", "container:NAME", and podman's
"ns:/PATH" (a network namespace bound at PATH: joined as a container's is).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Callable

from ..errors import Conflict, InvalidArgument, NotFound
from ..model.spec import ContainerConfig, EndpointSpec
from ..network import (
    DEFAULT_NETWORK,
    Attachment,
    AttachRequest,
    EndpointSettings,
    NetworkManager,
    NetworkRecord,
    PortMapping,
)
from ..network.dns import EmbeddedDns
from ..network.ports import with_exposed
from . import nsmodes
from .records import Container


def port_mappings(c: Container) -> list[PortMapping]:
    """C's published ports; with -P (publish_all) every exposed port too."""
    given = [PortMapping(p.host_ip, p.host_port, p.container_port, p.proto, p.count)
             for p in c.config.publish]
    # As docker, -P is moot where nothing is published (host, none, container:NAME).
    if not c.config.publish_all or mode_of(c.config.network_mode)[0] != "bridge":
        return given
    return with_exposed(given, c.config.exposed_ports)


def mode_of(network_mode: str) -> tuple[str, list[str]]:
    """(attach mode, networks) for a docker network mode."""
    if network_mode in ("", "default", "bridge"):
        return "bridge", [DEFAULT_NETWORK]
    if network_mode in ("none", "host"):
        return network_mode, []
    if network_mode.startswith(("container:", nsmodes.PREFIX)):
        return "container", []
    return "bridge", [network_mode]


def _names(spec: EndpointSpec, ref: str) -> bool:
    """Whether SPEC is for the network REF (a name, an id or an id prefix)."""
    return spec.network == ref or (len(ref) >= 3 and bool(spec.network_id)
                                   and spec.network_id.startswith(ref))


def plan(cfg: ContainerConfig) -> list[EndpointSpec]:
    """The networks a container joins at start, each with its settings: network_mode's
    first (with the container-wide aliases, ip and mac), then the others it was
    given at create or connected to since.  [] in modes host, none, container:."""
    mode, networks = mode_of(cfg.network_mode)
    if mode != "bridge":
        return []
    primary = networks[0]
    own = next((e for e in cfg.endpoints if _names(e, primary)), EndpointSpec(primary))
    first = dataclasses.replace(
        own, aliases=list(dict.fromkeys([*cfg.aliases, *own.aliases])), ip=own.ip or cfg.ip,
        mac=own.mac or cfg.mac)
    out = [first]
    for e in cfg.endpoints:
        if e is not own and not any(e.network == x.network for x in out):
            out.append(e)
    return out


def find(specs: list[EndpointSpec], net: NetworkRecord) -> EndpointSpec | None:
    """The endpoint on NET among SPECS (a plan), if there is one."""
    return next((e for e in specs if e.network in (net.name, net.id)
                 or e.network_id == net.id), None)


def settings_of(spec: EndpointSpec) -> EndpointSettings:
    """The network layer's form of SPEC."""
    links = []
    for link in spec.links:
        target, _, alias = link.partition(":")
        links.append((target, alias or target))
    return EndpointSettings(aliases=tuple(spec.aliases), ip=spec.ip, mac=spec.mac,
                            links=tuple(links), driver_opts=dict(spec.driver_opts),
                            link_local_ips=tuple(spec.link_local_ips), ip6=spec.ip6)


def record_connect(cfg: ContainerConfig, net: NetworkRecord, spec: EndpointSpec) -> None:
    """Make NET one of CFG's networks from its next start on, with SPEC's settings
    (joined to those it already had there)."""
    spec = dataclasses.replace(spec, network=net.name, network_id=net.id)
    mode, _ = mode_of(cfg.network_mode)
    if mode == "none":
        # No network yet (created so, or disconnected from the last one): NET is the first.
        cfg.network_mode, cfg.aliases, cfg.ip, cfg.mac = net.name, [], "", ""
        cfg.endpoints = [spec]
        return
    if mode != "bridge":
        raise InvalidArgument(f"a container in network mode {cfg.network_mode} cannot be "
                              f"connected to network {net.name}")
    specs = plan(cfg)
    old = find(specs, net)
    if old is None:
        specs.append(spec)
    else:
        spec = dataclasses.replace(
            spec, aliases=list(dict.fromkeys([*old.aliases, *spec.aliases])),
            links=list(dict.fromkeys([*old.links, *spec.links])), ip=spec.ip or old.ip,
            mac=spec.mac or old.mac, ip6=spec.ip6 or old.ip6,
            driver_opts={**old.driver_opts, **spec.driver_opts},
            link_local_ips=spec.link_local_ips or old.link_local_ips)
        specs = [spec if e is old else e for e in specs]
    # The plan's first entry carries the container-wide aliases, ip and mac from now on.
    cfg.aliases, cfg.ip, cfg.mac = [], "", ""
    cfg.endpoints = specs


def record_disconnect(cfg: ContainerConfig, net: NetworkRecord) -> None:
    """Take NET off CFG's networks (from the next start on); NotFound if it is not one.
    Leaving the first network makes the next one first, or mode none if none is left."""
    specs = plan(cfg)
    old = find(specs, net)
    if old is None:
        raise NotFound(f"container is not connected to network {net.name}")
    rest = [e for e in specs if e is not old]
    if old is specs[0]:
        cfg.network_mode = rest[0].network if rest else "none"
    cfg.aliases, cfg.ip, cfg.mac = [], "", ""
    cfg.endpoints = rest


class ContainerNetworking:
    """Attach and detach containers; GET resolves container names for links and container:."""

    def __init__(self, manager: NetworkManager, get: Callable[[str], Container]) -> None:
        self.manager = manager
        self.get = get
        self._dns: EmbeddedDns | None = None

    def validate(self, network_mode: str) -> None:
        """Refuse an unknown network or container before anything is created."""
        mode, networks = mode_of(network_mode)
        if network_mode.startswith(nsmodes.PREFIX):
            nsmodes.check(network_mode, "network")
        elif mode == "container":
            self.get(network_mode.split(":", 1)[1])
        for n in networks:
            if n != DEFAULT_NETWORK:
                self.manager.inspect(n)

    def resolve_endpoints(self, cfg: ContainerConfig) -> list[EndpointSpec]:
        """CFG's endpoint settings checked at create, each with its network's name and
        id; the first network's entry first.  NotFound for an unknown network."""
        if mode_of(cfg.network_mode)[0] != "bridge":
            for e in cfg.endpoints:
                if e.network not in (cfg.network_mode, "default"):
                    raise InvalidArgument(f"a container in network mode {cfg.network_mode} "
                                          f"cannot join network {e.network}")
            return []
        specs = plan(cfg)
        out: list[EndpointSpec] = []
        for e in specs:
            net = self.manager.inspect(e.network)
            if any(x.network == net.name for x in out):
                raise InvalidArgument(f"network {net.name} is given more than once")
            settings_of(e).validate(net.name)
            if e.ip and ipaddress.IPv4Address(e.ip) not in ipaddress.ip_network(net.subnet):
                raise InvalidArgument(f"address {e.ip} is not in network {net.name}'s "
                                      f"subnet {net.subnet}")
            if e.ip6 and (not net.subnet6 or ipaddress.IPv6Address(e.ip6)
                          not in ipaddress.IPv6Network(net.subnet6)):
                raise InvalidArgument(f"address {e.ip6} is not in network {net.name}'s "
                                      f"IPv6 subnet {net.subnet6 or '(it has none)'}")
            out.append(dataclasses.replace(e, network=net.name, network_id=net.id))
        # The first network's entry holds the container-wide settings from now on.
        cfg.aliases, cfg.ip, cfg.mac = [], "", ""
        return out

    def link_env(self, c: Container) -> list[str]:
        """The environment docker gives for legacy links (`--link NAME:ALIAS`): ALIAS_NAME,
        ALIAS_PORT and ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO] for each port the
        target exposes, and ALIAS_ENV_<var> for each of its variables."""
        env: list[str] = []
        for link in c.config.links:
            target_name, _, alias = link.partition(":")
            try:
                target = self.get(target_name)
            except NotFound:
                continue
            ip = (target.network.get("interfaces") or [{}])[0].get("ip", "")
            prefix = (alias or target.name).upper().replace("-", "_")
            ports = {p.partition("/")[::2] for p in target.config.exposed_ports}
            ports |= {(str(p.container_port), p.proto) for p in target.config.publish}
            # docker's order: by number, tcp before udp; the first is ALIAS_PORT.
            ordered = sorted(((int(n), proto or "tcp") for n, proto in ports),
                             key=lambda x: (x[0], x[1] != "tcp"))
            if ordered and ip:
                n, proto = ordered[0]
                env.append(f"{prefix}_PORT={proto}://{ip}:{n}")
            for n, proto in ordered if ip else []:
                key = f"{prefix}_PORT_{n}_{proto.upper()}"
                env += [f"{key}={proto}://{ip}:{n}", f"{key}_ADDR={ip}", f"{key}_PORT={n}",
                        f"{key}_PROTO={proto}"]
            env.append(f"{prefix}_NAME=/{c.name}/{alias or target.name}")
            for var in target.config.env:
                name, sep, value = var.partition("=")
                if sep and name not in ("HOME", "PATH"):
                    env.append(f"{prefix}_ENV_{name}={value}")
        return env

    async def remove_link(self, c: Container, alias: str) -> None:
        """Drop C's legacy link ALIAS (docker's `DELETE /containers/C/ALIAS?link=1`):
        from its record and, while it runs, from its hosts file.  NotFound if C has
        no link by that alias."""
        kept = [link for link in c.config.links
                if (link.partition(":")[2] or link.partition(":")[0]) != alias]
        if len(kept) == len(c.config.links):
            raise NotFound(f"container {c.name} has no link {alias}")
        c.config.links = kept
        if c.running:
            await asyncio.to_thread(self.manager.remove_link, c.id, alias)

    def _request(self, c: Container) -> AttachRequest:
        cfg = c.config
        mode, networks = mode_of(cfg.network_mode)
        join = None
        if cfg.network_mode.startswith(nsmodes.PREFIX):  # checked again: it may have gone
            join = nsmodes.check(cfg.network_mode, "network")
        elif mode == "container":
            other = self.get(cfg.network_mode.split(":", 1)[1])
            if not other.running:
                raise Conflict(f"cannot join the network namespace of {other.name}: "
                               "it is not running")
            join = (other.network.get("netns_path") or f"/proc/{other.state.pid}/ns/net")
        links = []
        for link in cfg.links:
            target_name, _, alias = link.partition(":")
            target = self.get(target_name)
            ip = target.network.get("interfaces", [{}])[0].get("ip") if target.network else None
            if not target.running or not ip:
                raise Conflict(f"cannot link to {target_name}: it is not running on a network")
            links.append((target.name, alias or target.name, str(ip)))
        add_hosts = []
        for h in cfg.add_hosts:
            host, sep, ip = h.partition(":")
            if not sep:
                raise InvalidArgument(f"invalid --add-host {h!r}: want HOST:IP")
            add_hosts.append((host, ip))
        specs = plan(cfg)
        if specs:
            networks = [e.network for e in specs]
        return AttachRequest(
            container_id=c.id, name=c.name, hostname=cfg.hostname, mode=mode, join_netns=join,
            networks=networks or [DEFAULT_NETWORK], aliases=list(cfg.aliases), links=links,
            settings={e.network: settings_of(e) for e in specs},
            publish=port_mappings(c), dns=list(cfg.dns), dns_search=list(cfg.dns_search),
            dns_options=list(cfg.dns_options), add_hosts=add_hosts, mac=cfg.mac or None,
            ip=cfg.ip or None)

    async def up(self, c: Container) -> tuple[str, dict[str, str]]:
        """Attach C; return the launcher's net setting and the /etc files to bind
        (read-write, as docker does: they are in C's directory on the state disk)."""
        req = self._request(c)
        req.validate()
        att: Attachment = await asyncio.to_thread(self.manager.attach, req)
        c.network = att.to_json()
        files = {"/etc/hosts": att.hosts_path, "/etc/resolv.conf": att.resolv_path,
                 "/etc/hostname": att.hostname_path}
        return (att.netns_path or "host"), {k: str(v) for k, v in files.items() if v}

    async def down(self, c: Container) -> None:
        """Detach C (idempotent)."""
        await asyncio.to_thread(self.manager.detach, c.id)

    def start_dns(self) -> None:
        """Run the user networks' DNS servers (network/dns.py) in the running loop;
        call before reconcile, which starts those of networks whose bridges exist."""
        self._dns = EmbeddedDns(asyncio.get_running_loop())
        self.manager.use_dns(self._dns)

    async def stop_dns(self) -> None:
        """Stop the DNS servers (at shutdown)."""
        await asyncio.to_thread(self.manager.use_dns, None)
        if self._dns is not None:
            self._dns.close()
            self._dns = None

    async def reconcile(self, live: set[str]) -> None:
        """Remove what belongs to containers that are not running."""
        await asyncio.to_thread(self.manager.reconcile, live)
