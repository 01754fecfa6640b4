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
        out = [Member(cid, m["name"], m["ip"], tuple(m.get("aliases", ())))
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
        if want is not None:
            addr = ipaddress.ip_address(want)
            if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
                raise InvalidArgument(f"address {want} is not usable in {net.subnet}")
            if addr in used:
                raise Conflict(f"address {want} is already in use on network {net.name}")
        else:
            free = self._next_free(subnet, used, last)
            if free is None:
                raise Conflict(f"no free address left on network {net.name} ({net.subnet})")
            addr = free
            # The cursor first: a cursor ahead of the members is harmless.
            store.write_json(self._cursor_path(net.name), {"last": str(addr)})
        store.write_json(self._member_path(net.name, container_id),
                         {"name": name, "ip": str(addr), "aliases": list(aliases)})
        return str(addr)

    @staticmethod
    def _next_free(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
                   used: set[ipaddress.IPv4Address | ipaddress.IPv6Address],
                   last: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        first = int(subnet.network_address) + 1
        end = int(subnet.broadcast_address)  # exclusive: the broadcast address
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

    def release(self, network: str, container_id: str) -> bool:
        """Forget CONTAINER_ID's address on NETWORK; False if it had none.

        An unlink: it works on a full disk.
        """
        self._cursor(network)  # an older record's members become files first
        return store.remove(self._member_path(network, container_id))

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
