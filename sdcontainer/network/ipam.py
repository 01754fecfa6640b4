"""Address management: who holds which address on which network.

Each member is one small file, state_dir/networks/ipam/<network>/<container
id>.json (its name, address and aliases); state_dir/networks/ipam/<network>.json
keeps the last address handed out.  Addresses are handed out round-robin from
there rather than lowest-first, so a just-released address is not reused at
once (stale ARP entries and connections elsewhere would reach the wrong
container).

Releasing an address only unlinks its member file: it needs no free space, so
a full state disk cannot stop a container's removal or leave a half-written
record (a rewrite of one shared file would need room for the new copy).
Every function here expects the caller to hold the state lock.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import shutil
from pathlib import Path
from typing import Any

from sdcontainer.errors import Conflict, InvalidArgument

from . import store
from .model import CONTAINER_ID_RE, Member, NetworkRecord

log = logging.getLogger(__name__)


class Ipam:
    """The IPAM files under DIRECTORY."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _cursor_path(self, network: str) -> Path:
        return self.dir / f"{network}.json"

    def _members_dir(self, network: str) -> Path:
        return self.dir / network

    def _member_path(self, network: str, container_id: str) -> Path:
        return self._members_dir(network) / f"{container_id}.json"

    def _cursor(self, network: str) -> str | None:
        data = store.read_json(self._cursor_path(network))
        if not isinstance(data, dict):
            return None
        if data.get("members"):
            self._migrate(network, data)
        last = data.get("last")
        return str(last) if last else None

    def _migrate(self, network: str, data: dict[str, Any]) -> None:
        """Split an older single-file record (members inside) into member files.

        Member files first, then the cursor rewritten without members: a crash
        in between repeats the (idempotent) split on the next read.
        """
        for cid, m in data["members"].items():
            store.write_json(self._member_path(network, cid),
                             {"name": m["name"], "ip": m["ip"],
                              "aliases": list(m.get("aliases", ()))})
        store.write_json(self._cursor_path(network), {"last": data.get("last")})
        data["members"] = {}

    def _raw_members(self, network: str) -> dict[str, dict[str, Any]]:
        self._cursor(network)  # migrates an older record first
        d = self._members_dir(network)
        out: dict[str, dict[str, Any]] = {}
        if not d.is_dir():
            return out
        for p in d.glob("*.json"):
            if not CONTAINER_ID_RE.match(p.stem):
                continue
            try:
                data = store.read_json(p)
            except ValueError:
                data = None
            if not isinstance(data, dict) or "ip" not in data or "name" not in data:
                # Cannot be half-written (written atomically); someone edited it.
                log.warning("ignoring unreadable IPAM entry %s", p)
                continue
            out[p.stem] = data
        return out

    def members(self, network: str) -> list[Member]:
        """Members of NETWORK, ordered by address."""
        out = [Member(cid, m["name"], m["ip"], tuple(m.get("aliases", ())), ip6=m.get("ip6", ""))
               for cid, m in self._raw_members(network).items()]
        return sorted(out, key=lambda m: ipaddress.ip_address(m.ip))

    def networks(self) -> list[str]:
        """Networks that have IPAM state."""
        if not self.dir.is_dir():
            return []
        found = {p.stem for p in self.dir.glob("*.json")}
        found |= {p.name for p in self.dir.iterdir() if p.is_dir()}
        return sorted(found)

    def allocate(self, net: NetworkRecord, container_id: str, name: str,
                 aliases: tuple[str, ...], want: str | None = None) -> str:
        """Give CONTAINER_ID an address on NET (WANT if given) and record it."""
        last = self._cursor(net.name)
        members = self._raw_members(net.name)
        if container_id in members:
            raise Conflict(f"container is already attached to network {net.name}")
        subnet = ipaddress.ip_network(net.subnet)
        used = {ipaddress.ip_address(m["ip"]) for m in members.values()}
        used.add(ipaddress.ip_address(net.gateway))
        # AuxiliaryAddresses are taken by devices outside our view (docker's meaning).
        used |= {ipaddress.ip_address(a) for a in net.aux_addresses.values()}
        if want is not None:
            addr = ipaddress.ip_address(want)
            if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
                raise InvalidArgument(f"address {want} is not usable in {net.subnet}")
            if addr in used:
                raise Conflict(f"address {want} is already in use on network {net.name}")
        else:
            # Automatic addresses come from IPRange when the network has one.
            first = int(subnet.network_address) + 1
            end = int(subnet.broadcast_address)  # exclusive: the broadcast address
            if net.ip_range:
                pool = ipaddress.ip_network(net.ip_range)
                first = max(first, int(pool.network_address))
                end = min(end, int(pool.broadcast_address) + 1)
            free = self._next_free(first, end, used, last)
            if free is None:
                where = net.ip_range or net.subnet
                raise Conflict(f"no free address left on network {net.name} ({where})")
            addr = free
            # The cursor first: a cursor ahead of the members is harmless.
            store.write_json(self._cursor_path(net.name), {"last": str(addr)})
        store.write_json(self._member_path(net.name, container_id),
                         {"name": name, "ip": str(addr), "aliases": list(aliases)})
        return str(addr)

    @staticmethod
    def _next_free(first: int, end: int,
                   used: set[ipaddress.IPv4Address | ipaddress.IPv6Address],
                   last: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The first unused address after LAST in [FIRST, END), wrapping around."""
        size = end - first
        if size <= 0:
            return None
        start = int(ipaddress.ip_address(last)) + 1 if last else first
        if not first <= start < end:
            start = first
        for i in range(size):
            cand = ipaddress.ip_address(first + (start - first + i) % size)
            if cand not in used:
                return cand
        return None

    def allocate6(self, net: NetworkRecord, container_id: str, want: str | None = None) -> str:
        """Give CONTAINER_ID, already holding an IPv4 address on NET, an IPv6 address
        there too (WANT if given): the lowest free one of the IPv6 IPRange or subnet."""
        members = self._raw_members(net.name)
        own = members.get(container_id)
        if own is None:
            raise Conflict(f"container holds no address on network {net.name}")
        subnet = ipaddress.IPv6Network(net.subnet6)
        used = {ipaddress.ip_address(m["ip6"]) for m in members.values() if m.get("ip6")}
        used.add(ipaddress.ip_address(net.gateway6))
        used |= {ipaddress.ip_address(a) for a in net.aux_addresses.values()}
        if want is not None:
            addr = ipaddress.ip_address(want)
            if addr not in subnet or addr == subnet.network_address:
                raise InvalidArgument(f"address {want} is not usable in {net.subnet6}")
            if addr in used:
                raise Conflict(f"address {want} is already in use on network {net.name}")
        else:
            pool = ipaddress.IPv6Network(net.ip_range6) if net.ip_range6 else subnet
            first = max(int(subnet.network_address) + 1, int(pool.network_address))
            end = int(pool.broadcast_address) + 1
            free = self._next_free(first, end, used, None)
            if free is None:
                raise Conflict(f"no free IPv6 address left on network {net.name}")
            addr = free
        store.write_json(self._member_path(net.name, container_id), {**own, "ip6": str(addr)})
        return str(addr)

    def release(self, network: str, container_id: str) -> bool:
        """Forget CONTAINER_ID's address on NETWORK; False if it had none.

        An unlink: it works on a full disk.
        """
        self._cursor(network)  # an older record's members become files first
        return store.remove(self._member_path(network, container_id))

    def rename(self, network: str, container_id: str, name: str) -> None:
        """CONTAINER_ID is called NAME now (its address stays): peers' hosts files say so."""
        member = self._raw_members(network).get(container_id)
        if member is not None:
            store.write_json(self._member_path(network, container_id), {**member, "name": name})

    def owners(self) -> dict[str, list[str]]:
        """Container id -> networks it holds an address on."""
        out: dict[str, list[str]] = {}
        for network in self.networks():
            for cid in self._raw_members(network):
                out.setdefault(cid, []).append(network)
        return out

    def drop(self, network: str) -> None:
        """Remove NETWORK's IPAM state (when the network is removed)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self._members_dir(network))
        store.remove(self._cursor_path(network))
