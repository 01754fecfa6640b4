"""The data the network layer takes and gives: requests, attachments, records.

Everything here is a plain dataclass so the daemon can log it, store it and
send it over its APIs without knowing about netlink or nftables.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sdcontainer.errors import InvalidArgument

CONTAINER_ID_RE = re.compile(r"^[0-9a-f]{64}\Z")
# docker's rule for network names, so names made for docker work here.
# docker takes almost any network name ("test 01" too); ours name a file of the store,
# so no "/", no control character, and no leading dot or blank.
NETWORK_NAME_RE = re.compile(r"^[^/\x00-\x20\x7f.][^/\x00-\x1f\x7f]{0,127}\Z")
HOST_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,252})\Z")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")

DEFAULT_NETWORK = "bridge"
MODES = ("bridge", "host", "none", "container")


def _check_ip(addr: str) -> None:
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise InvalidArgument(f"invalid IP address {addr!r}") from None


@dataclass(frozen=True)
class PortMapping:
    """One `-p` publication: HOST_IP:HOST_PORT -> CONTAINER_PORT/PROTO.

    host_ip "" means every host address; host_port 0 means "pick a free
    port" (resolved in the Attachment).  count > 1 publishes a range of
    consecutive ports on both sides (`-p 8000-8002:80-82`).
    """

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"
    count: int = 1

    def expand(self) -> list[PortMapping]:
        """The range as single-port mappings."""
        host_ip = "" if self.host_ip == "0.0.0.0" else self.host_ip
        return [
            PortMapping(host_ip, self.host_port + i if self.host_port else 0,
                        self.container_port + i, self.proto)
            for i in range(self.count)
        ]


@dataclass(frozen=True)
class EndpointSettings:
    """What a container asks for on one network (docker's EndpointSettings).

    aliases are extra names on that network; ip and mac a fixed IPv4 address
    and MAC address; links (target container name, alias) name another member
    of that network, resolved whenever the hosts files are written (so the
    target may join later); driver_opts are kept and shown back;
    link_local_ips are added to the interface as extra addresses.
    """

    aliases: tuple[str, ...] = ()
    ip: str = ""
    mac: str = ""
    links: tuple[tuple[str, str], ...] = ()
    driver_opts: dict[str, str] = field(default_factory=dict)
    link_local_ips: tuple[str, ...] = ()
    ip6: str = ""  # a fixed IPv6 address, on a network with an IPv6 subnet

    def validate(self, network: str) -> None:
        """Raise InvalidArgument for anything malformed."""
        for n in [*self.aliases, *(x for link in self.links for x in link)]:
            if not HOST_NAME_RE.match(n):
                raise InvalidArgument(f"invalid alias or link {n!r} for network {network}")
        if self.ip:
            try:
                ipaddress.IPv4Address(self.ip)
            except ValueError:
                raise InvalidArgument(f"invalid IPv4 address {self.ip!r} for network "
                                      f"{network}") from None
        if self.ip6:
            try:
                ipaddress.IPv6Address(self.ip6)
            except ValueError:
                raise InvalidArgument(f"invalid IPv6 address {self.ip6!r} for network "
                                      f"{network}") from None
        if self.mac and not MAC_RE.match(self.mac.lower()):
            raise InvalidArgument(f"invalid MAC address {self.mac!r} for network {network}")
        for addr in self.link_local_ips:
            try:
                ok = ipaddress.IPv4Address(addr).is_link_local
            except ValueError:
                ok = False
            if not ok:
                raise InvalidArgument(f"invalid link-local IPv4 address {addr!r} for network "
                                      f"{network}")


@dataclass
class AttachRequest:
    """What the launcher asks for when it starts a container.

    mode is "bridge", "host", "none" or "container"; for "container" the
    caller has resolved the target into join_netns (a netns path).  links are
    (target container name, alias, target ip); add_hosts are (name, ip).
    mac and ip (`--mac-address`, `--ip`) and aliases apply to the first
    network; settings holds per-network settings, keyed as in networks.
    """

    container_id: str
    name: str
    hostname: str
    mode: str = "bridge"
    join_netns: str | None = None
    networks: list[str] = field(default_factory=lambda: [DEFAULT_NETWORK])
    aliases: list[str] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    publish: list[PortMapping] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[tuple[str, str]] = field(default_factory=list)
    mac: str | None = None
    domainname: str = ""
    ip: str | None = None
    settings: dict[str, EndpointSettings] = field(default_factory=dict)

    def effective(self, index: int) -> EndpointSettings:
        """The settings for networks[INDEX]: its own, and for the first network
        the container-wide aliases, ip and mac as well."""
        s = self.settings.get(self.networks[index], EndpointSettings())
        if index:
            return s
        return dataclasses.replace(
            s, aliases=tuple(dict.fromkeys([*self.aliases, *s.aliases])),
            ip=s.ip or self.ip or "", mac=s.mac or self.mac or "")

    def validate(self) -> None:
        """Raise InvalidArgument for anything malformed, before any work is done."""
        if not CONTAINER_ID_RE.match(self.container_id):
            raise InvalidArgument(f"invalid container id {self.container_id!r}")
        mode = self.mode.split(":", 1)[0]
        if mode not in MODES:
            raise InvalidArgument(f"invalid network mode {self.mode!r}")
        if mode == "container" and not self.join_netns:
            raise InvalidArgument("network mode container needs the target's network namespace")
        if mode == "bridge" and not self.networks:
            raise InvalidArgument("bridge mode needs at least one network")
        if len(set(self.networks)) != len(self.networks):
            raise InvalidArgument("a network is given more than once")
        if self.publish and mode != "bridge":
            raise InvalidArgument(f"ports cannot be published in network mode {mode}")
        if self.hostname and not HOST_NAME_RE.match(self.hostname):
            raise InvalidArgument(f"invalid hostname {self.hostname!r}")
        if self.ip is not None:
            try:
                ipaddress.IPv4Address(self.ip)
            except ValueError:
                raise InvalidArgument(f"invalid IPv4 address {self.ip!r}") from None
        if self.mac is not None and not MAC_RE.match(self.mac.lower()):
            raise InvalidArgument(f"invalid MAC address {self.mac!r}")
        for network, settings in self.settings.items():
            if network not in self.networks:
                raise InvalidArgument(f"endpoint settings for network {network}, which the "
                                      "container does not join")
            settings.validate(network)
        # Everything below ends up in hosts or resolv.conf lines: no blanks,
        # no newlines, addresses that parse.
        for n in [self.name, *self.aliases, *(x for link in self.links for x in link[:2]),
                  *(h for h, _ in self.add_hosts)]:
            if not HOST_NAME_RE.match(n):
                raise InvalidArgument(f"invalid host name or alias {n!r}")
        for addr in [*(link[2] for link in self.links), *(ip for _, ip in self.add_hosts),
                     *self.dns]:
            _check_ip(addr)
        for word in [*self.dns_search, *self.dns_options]:
            if not word or any(c.isspace() for c in word):
                raise InvalidArgument(f"invalid DNS search domain or option {word!r}")
        for p in self.publish:
            if p.host_ip and p.host_ip != "0.0.0.0":
                try:
                    ipaddress.IPv4Address(p.host_ip)
                except ValueError:
                    raise InvalidArgument(f"invalid host IPv4 address {p.host_ip!r} in port "
                                          "mapping") from None
            if p.proto not in ("tcp", "udp"):
                raise InvalidArgument(f"invalid protocol {p.proto!r} in port mapping")
            if p.count < 1 or (p.host_port == 0 and p.count > 1):
                raise InvalidArgument("a port range needs an explicit host port range")
            last_host = p.host_port + p.count - 1
            last_ctr = p.container_port + p.count - 1
            if not (p.host_port >= 0 and last_host <= 65535 and p.container_port >= 1
                    and last_ctr <= 65535):
                raise InvalidArgument(f"invalid port mapping {p.host_port}:{p.container_port}")


@dataclass(frozen=True)
class Interface:
    """One network interface of a container in bridge mode."""

    network: str
    ifname: str
    host_ifname: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    network_id: str = ""  # the network's id (inspect's NetworkID); "" in older records
    # The endpoint settings asked for on this network, shown back by inspect:
    # aliases, links ("target:alias"), the requested address, driver options and
    # link-local addresses ("" and empty in older records).
    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    ipam_ip: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)
    link_local_ips: tuple[str, ...] = ()
    # On a network with an IPv6 subnet: the address, its prefix length, the gateway
    # and the requested address ("" and 0 otherwise).
    ip6: str = ""
    prefixlen6: int = 0
    gateway6: str = ""
    ipam_ip6: str = ""

    @classmethod
    def load(cls, d: dict[str, Any]) -> Interface:
        """From the JSON form (lists back to tuples; unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        for k in ("aliases", "links", "link_local_ips"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class Attachment:
    """The result of attach: what the launcher needs to build the sandbox.

    netns_path None means "leave the network namespace alone" (host mode).
    The three files are meant to be bind-mounted over /etc/hosts,
    /etc/resolv.conf and /etc/hostname; hosts may be rewritten in place later.
    """

    container_id: str
    mode: str
    netns_path: str | None
    interfaces: tuple[Interface, ...]
    ports: tuple[PortMapping, ...]
    hosts_path: str
    resolv_path: str
    hostname_path: str

    @property
    def ips(self) -> list[str]:
        """Every address, the primary (default route) one first."""
        return [i.ip for i in self.interfaces]

    @property
    def ip(self) -> str | None:
        """The primary address (on eth0), if any."""
        return self.interfaces[0].ip if self.interfaces else None

    @property
    def gateway(self) -> str | None:
        """The default gateway, if any."""
        return self.interfaces[0].gateway if self.interfaces else None

    @property
    def mac(self) -> str | None:
        """eth0's MAC address, if any."""
        return self.interfaces[0].mac if self.interfaces else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (see from_json)."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Attachment:
        """Inverse of to_json."""
        return cls(
            container_id=d["container_id"],
            mode=d["mode"],
            netns_path=d["netns_path"],
            interfaces=tuple(Interface.load(i) for i in d["interfaces"]),
            ports=tuple(PortMapping(**p) for p in d["ports"]),
            hosts_path=d["hosts_path"],
            resolv_path=d["resolv_path"],
            hostname_path=d["hostname_path"],
        )


@dataclass(frozen=True)
class NetworkRecord:
    """A network as stored under state_dir/networks/<name>.json."""

    name: str
    id: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""
    driver: str = "bridge"
    # As given at create, shown back by inspect (docker-compose compares them with its
    # file): driver options, IPAM options, IPRange and AuxiliaryAddresses.
    options: dict[str, str] = field(default_factory=dict)
    ipam_options: dict[str, str] = field(default_factory=dict)
    ip_range: str = ""
    aux_addresses: dict[str, str] = field(default_factory=dict)
    attachable: bool = False
    # IPv6 (EnableIPv6 with an IPv6 subnet): beside the IPv4 subnet, never instead.
    subnet6: str = ""
    gateway6: str = ""
    ip_range6: str = ""

    @property
    def user_defined(self) -> bool:
        """Members of user-defined networks resolve each other by name."""
        return self.name != DEFAULT_NETWORK

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NetworkRecord:
        """Inverse of to_json."""
        return cls(**d)


@dataclass(frozen=True)
class Member:
    """A container on a network, as the network's IPAM file records it."""

    container_id: str
    name: str
    ip: str
    aliases: tuple[str, ...] = ()
    mac: str = ""  # from the container's endpoint record (network inspect); "" if none
    endpoint_id: str = ""
    ip6: str = ""  # on a network with an IPv6 subnet
