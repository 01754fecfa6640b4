"""Writing a container's name files from the records (see hosts.py for the formats).

Kept apart from the manager so that every path that changes membership
(attach, detach, connect, disconnect) renders the same way.  The caller holds
the state lock.
"""

from __future__ import annotations

from pathlib import Path

from . import hosts
from .config import NetworkConfig
from .endpoint import Endpoint, EndpointStore
from .ipam import Ipam
from .model import DEFAULT_NETWORK, Member


class NameFiles:
    """Renders and writes hosts, resolv.conf and hostname files."""

    def __init__(self, ipam: Ipam, endpoints: EndpointStore, config: NetworkConfig) -> None:
        self.ipam = ipam
        self.endpoints = endpoints
        self.config = config

    def hosts_text(self, ep: Endpoint, cache: dict[str, list[Member]]) -> str:
        """EP's hosts file; CACHE memoises network members across several renders."""
        att = ep.attachment
        if att.mode == "host":
            try:
                base = Path("/etc/hosts").read_text()
            except FileNotFoundError:
                base = hosts.LOCALHOST
            return hosts.render_hosts(own=[], add_hosts=ep.add_hosts, links=[], members=[],
                                      base=base)
        own = []
        if att.interfaces:
            fqdn = f"{ep.hostname}.{ep.domainname}" if ep.domainname and ep.hostname else ""
            names = (fqdn, ep.hostname, ep.name, *ep.aliases)
            own.append(hosts.HostEntry(att.interfaces[0].ip, names))
        members = []
        for iface in att.interfaces:
            if iface.network == DEFAULT_NETWORK:
                continue
            if iface.network not in cache:
                cache[iface.network] = self.ipam.members(iface.network)
            members += [hosts.HostEntry(m.ip, (m.name, *m.aliases))
                        for m in cache[iface.network] if m.container_id != ep.container_id]
        return hosts.render_hosts(own=own, add_hosts=ep.add_hosts, links=ep.links,
                                  members=members)

    def write_all(self, ep: Endpoint, keep_loopback: bool) -> None:
        """Create EP's three files (before the container starts)."""
        att = ep.attachment
        hosts.write_new(Path(att.hosts_path), self.hosts_text(ep, {}))
        host_resolv = hosts.host_resolv_conf(Path(self.config.resolv_conf))
        hosts.write_new(Path(att.resolv_path), hosts.render_resolv(
            host_resolv, dns=ep.dns, search=ep.dns_search, options=ep.dns_options,
            fallback=self.config.dns, keep_loopback=keep_loopback))
        hosts.write_new(Path(att.hostname_path), (ep.hostname or ep.container_id[:12]) + "\n")

    def rewrite_hosts(self, ep: Endpoint, cache: dict[str, list[Member]] | None = None) -> None:
        """Rewrite EP's hosts file in place (it may be bind-mounted already)."""
        hosts.rewrite_in_place(Path(ep.attachment.hosts_path), self.hosts_text(ep, cache or {}))

    def refresh_peers(self, ep: Endpoint, networks: list[str]) -> None:
        """Rewrite, in place, the hosts files of everyone sharing a user network with EP."""
        cache: dict[str, list[Member]] = {}
        seen = {ep.container_id}
        for network in networks:
            if network == DEFAULT_NETWORK:
                continue
            for m in self.ipam.members(network):
                if m.container_id in seen:
                    continue
                seen.add(m.container_id)
                peer = self.endpoints.get(m.container_id)
                if peer is not None and peer.attachment.mode == "bridge":
                    self.rewrite_hosts(peer, cache)
