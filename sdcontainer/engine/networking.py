"""The engine's side of networking: a container's config into an AttachRequest,
an Attachment into what the launcher needs (a netns path and /etc files).

Network modes as docker names them: "bridge" (the default network), a
user-defined network's name, "none", "host", "container:NAME".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import Conflict, InvalidArgument
from ..network import DEFAULT_NETWORK, Attachment, AttachRequest, NetworkManager, PortMapping
from .records import Container


def port_mappings(c: Container) -> list[PortMapping]:
    """C's published ports."""
    return [PortMapping(p.host_ip, p.host_port, p.container_port, p.proto, p.count)
            for p in c.config.publish]


def mode_of(network_mode: str) -> tuple[str, list[str]]:
    """(attach mode, networks) for a docker network mode."""
    if network_mode in ("", "default", "bridge"):
        return "bridge", [DEFAULT_NETWORK]
    if network_mode in ("none", "host"):
        return network_mode, []
    if network_mode.startswith("container:"):
        return "container", []
    return "bridge", [network_mode]


class ContainerNetworking:
    """Attach and detach containers; GET resolves container names for links and container:."""

    def __init__(self, manager: NetworkManager, get: Callable[[str], Container]) -> None:
        self.manager = manager
        self.get = get

    def validate(self, network_mode: str) -> None:
        """Refuse an unknown network or container before anything is created."""
        mode, networks = mode_of(network_mode)
        if mode == "container":
            self.get(network_mode.split(":", 1)[1])
        for n in networks:
            if n != DEFAULT_NETWORK:
                self.manager.inspect(n)

    def _request(self, c: Container) -> AttachRequest:
        cfg = c.config
        mode, networks = mode_of(cfg.network_mode)
        join = None
        if mode == "container":
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
        return AttachRequest(
            container_id=c.id, name=c.name, hostname=cfg.hostname, mode=mode, join_netns=join,
            networks=networks or [DEFAULT_NETWORK], aliases=list(cfg.aliases), links=links,
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

    async def reconcile(self, live: set[str]) -> None:
        """Remove what belongs to containers that are not running."""
        await asyncio.to_thread(self.manager.reconcile, live)
