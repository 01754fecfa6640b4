"""Links and addresses over netlink (pyroute2): bridges, veth pairs, routes.

One Netlink object wraps a route socket bound to the namespace it was opened
in (see nsutil); callers serialise use of it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import socket
from pathlib import Path
from typing import cast

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from sdcontainer.errors import Conflict, SdcError

VETH_PREFIX = "sdcv"
IFA_F_NODAD = 0x02  # linux/if_addr.h: no duplicate address detection


def random_mac() -> str:
    """A random unicast, locally administered MAC address."""
    b = bytearray(secrets.token_bytes(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def set_sysctl(path: str, value: str) -> None:
    """Write /proc/sys file PATH unless it already holds VALUE."""
    p = Path(path)
    if p.read_text().strip() != value:
        p.write_text(value + "\n")


class Netlink:
    """A route netlink socket, in the namespace of the thread that makes it."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def close(self) -> None:
        """Close the socket."""
        self.ipr.close()

    def index(self, ifname: str) -> int | None:
        """The index of link IFNAME, or None."""
        try:
            links = self.ipr.link("get", ifname=ifname)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise
        return cast(int, links[0]["index"])

    def ensure_bridge(self, name: str, gateway: str, prefixlen: int, mtu: int) -> bool:
        """Make bridge NAME with address GATEWAY/PREFIXLEN, up; True if it was created."""
        idx = self.index(name)
        created = idx is None
        if idx is None:
            try:
                # A fixed MAC: otherwise the bridge takes the lowest port MAC,
                # which changes as containers come and go and makes the
                # gateway's MAC flap in every container's ARP cache.
                self.ipr.link("add", ifname=name, kind="bridge", address=random_mac(), mtu=mtu)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise SdcError(f"cannot create bridge {name}: {os.strerror(e.code)}") from None
            idx = self.index(name)
            if idx is None:
                raise SdcError(f"bridge {name} vanished while being created")
        try:
            self.ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise SdcError(f"cannot address bridge {name}: {os.strerror(e.code)}") from None
        self.ipr.link("set", index=idx, state="up")
        return created

    def delete_link(self, ifname: str) -> bool:
        """Delete link IFNAME (a veth takes its peer with it); False if absent."""
        try:
            self.ipr.link("del", ifname=ifname)
        except NetlinkError as e:
            if e.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise SdcError(f"cannot delete link {ifname}: {os.strerror(e.code)}") from None
        return True

    def add_veth(self, host_name: str, owner: str, bridge: str, netns_fd: int,
                 peer_name: str, peer_mac: str, mtu: int) -> None:
        """A veth pair: HOST_NAME on BRIDGE, PEER_NAME created directly in NETNS_FD.

        The host side carries OWNER (the container id) as its alias, so a
        crash leaves links that can still be traced to their container.
        """
        bridge_idx = self.index(bridge)
        if bridge_idx is None:
            raise SdcError(f"bridge {bridge} does not exist")
        try:
            self.ipr.link("add", ifname=host_name, kind="veth", mtu=mtu, ifalias=owner,
                          peer={"ifname": peer_name, "net_ns_fd": netns_fd,
                                "address": peer_mac, "mtu": mtu})
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                raise Conflict(f"interface {host_name} already exists") from None
            raise SdcError(f"cannot create veth {host_name}: {os.strerror(e.code)}") from None
        idx = self.index(host_name)
        if idx is None:
            raise SdcError(f"veth {host_name} vanished while being created")
        # The kernel ignores IFLA_IFALIAS when it creates a link: set it now.
        self.ipr.link("set", index=idx, master=bridge_idx, state="up", ifalias=owner)
        # Hairpin: with br_netfilter, a container's packet to a published port
        # of its own is DNATed at bridge level and must leave by the port it
        # came in on.
        self.ipr.brport("set", index=idx, mode=1)

    def configure_inside(self, ifname: str, ip: str, prefixlen: int, gateway: str | None,
                         mtu: int, link_local: tuple[str, ...] = (),
                         v6: tuple[str, int, str | None] | None = None) -> None:
        """Address IFNAME (this socket's namespace), bring it up, add the default route.
        LINK_LOCAL addresses (169.254/16) are added beside the network's; V6 is an IPv6
        (address, prefix length, gateway for the default route or None)."""
        idx = self.index(ifname)
        if idx is None:
            raise SdcError(f"{ifname} is missing in the container's namespace")
        self.ipr.addr("add", index=idx, address=ip, prefixlen=prefixlen)
        for extra in link_local:
            self.ipr.addr("add", index=idx, address=extra, prefixlen=16)
        if v6 is not None:
            # No duplicate address detection: IPAM hands the address out once, and DAD
            # would keep it unusable for a second after start.
            self.ipr.addr("add", index=idx, address=v6[0], prefixlen=v6[1], flags=IFA_F_NODAD)
        self.ipr.link("set", index=idx, state="up", mtu=mtu)
        if gateway is not None:
            self.ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)
        if v6 is not None and v6[2] is not None:
            self.ipr.route("add", dst="::/0", gateway=v6[2], oif=idx, family=socket.AF_INET6)

    def add_address6(self, ifname: str, address: str, prefixlen: int) -> None:
        """Give IFNAME (a bridge) an IPv6 address, if it has not got it yet."""
        idx = self.index(ifname)
        if idx is None:
            raise SdcError(f"{ifname} does not exist")
        try:
            self.ipr.addr("add", index=idx, address=address, prefixlen=prefixlen,
                          flags=IFA_F_NODAD)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise SdcError(f"cannot give {ifname} address {address}: "
                               f"{os.strerror(e.code)}") from None

    def default_route(self, ifname: str, gateway: str, gateway6: str = "") -> None:
        """Make the default route (of this socket's namespace) go via GATEWAY on IFNAME,
        and the IPv6 one via GATEWAY6 if given."""
        idx = self.index(ifname)
        if idx is None:
            raise SdcError(f"{ifname} is missing in the container's namespace")
        self.ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=idx)
        if gateway6:
            self.ipr.route("replace", dst="::/0", gateway=gateway6, oif=idx,
                           family=socket.AF_INET6)

    def loopback_up(self) -> None:
        """Bring lo up (a fresh namespace has it down)."""
        self.ipr.link("set", index=1, state="up")

    def routed_subnets(self) -> list[ipaddress.IPv4Network]:
        """Destinations of the main table's IPv4 routes (default route excluded)."""
        out = []
        for r in self.ipr.get_routes(family=socket.AF_INET, table=254):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                out.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        return out

    def routes_by_device(self) -> list[tuple[ipaddress.IPv4Network, str]]:
        """The main table's IPv4 routes (default excluded) with their device's name."""
        names = {link["index"]: cast(str, link.get_attr("IFLA_IFNAME"))
                 for link in self.ipr.get_links()}
        out = []
        for r in self.ipr.get_routes(family=socket.AF_INET, table=254):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                out.append((ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False),
                            names.get(r.get_attr("RTA_OIF"), "?")))
        return out

    def our_veths(self) -> dict[str, str]:
        """Host-side veths of ours: name -> owner (container id, "" if unknown)."""
        found: dict[str, str] = {}
        for link in self.ipr.get_links():
            name = cast(str, link.get_attr("IFLA_IFNAME"))
            if name.startswith(VETH_PREFIX):
                found[name] = cast(str, link.get_attr("IFLA_IFALIAS") or "")
        return found
