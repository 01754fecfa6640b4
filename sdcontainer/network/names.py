"""Writing a container's name files from the records (see hosts.py for the formats).

Kept apart from the manager so that every path that changes membership
(attach, detach, connect, disconnect) renders the same way.  The caller holds
the state lock.
"""

from __future__ import annotations

from pathlib import Path

from . import dns, hosts
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
        # The daemon's embedded DNS server (dns.py), if it runs one: told of every
        # change of a user network's members, so that it answers from memory.
        self.dns: dns.EmbeddedDns | None = None

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
            first = att.interfaces[0]
            names = (fqdn, ep.hostname, ep.name, *ep.aliases,
                     *(first.aliases if first.network != DEFAULT_NETWORK else ()))
            own.append(hosts.HostEntry(first.ip, names))
            if first.ip6:
                own.append(hosts.HostEntry(first.ip6, names))
        members = []
        links = list(ep.links)
        for iface in att.interfaces:
            if iface.network == DEFAULT_NETWORK:
                continue
            if iface.network not in cache:
                cache[iface.network] = self.ipam.members(iface.network)
            others = [m for m in cache[iface.network] if m.container_id != ep.container_id]
            members += [hosts.HostEntry(m.ip, (m.name, *m.aliases)) for m in others]
            # Links scoped to this network (EndpointSettings.Links): the target's address
            # on it, once the target has joined; until then no line.
            by_name = {m.name: m.ip for m in others}
            for link in iface.links:
                target, _, alias = link.partition(":")
                if target in by_name:
                    links.append((target, alias or target, by_name[target]))
        return hosts.render_hosts(own=own, add_hosts=ep.add_hosts, links=links,
                                  members=members)

    def write_all(self, ep: Endpoint, keep_loopback: bool) -> None:
        """Create EP's three files (before the container starts)."""
        att = ep.attachment
        hosts.write_new(Path(att.hosts_path), self.hosts_text(ep, {}))
        host_resolv = hosts.host_resolv_conf(Path(self.config.resolv_conf))
        # On a user network the embedded DNS server (its gateway) comes first.
        first = next((i.gateway for i in att.interfaces if i.network != DEFAULT_NETWORK), "")
        hosts.write_new(Path(att.resolv_path), hosts.render_resolv(
            host_resolv, dns=ep.dns, search=ep.dns_search, options=ep.dns_options,
            fallback=self.config.dns, keep_loopback=keep_loopback,
            embedded=first if att.mode == "bridge" else ""))
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
        self.publish_zones(networks, cache)

    def zone(self, network: str, members: list[Member] | None = None) -> dns.Zone:
        """What NETWORK's DNS server answers, from the IPAM and endpoint records."""
        if members is None:
            members = self.ipam.members(network)
        return dns.build_zone(network, members, self.endpoints.get)

    def publish_zones(self, networks: list[str],
                      cache: dict[str, list[Member]] | None = None) -> None:
        """Give the DNS server the current answers of those of NETWORKS it serves."""
        server = self.dns
        if server is None:
            return
        for network in dict.fromkeys(networks):
            if server.serving(network):
                server.update(network, self.zone(network, (cache or {}).get(network)))
