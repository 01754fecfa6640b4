"""Address management: who holds which address on which network.

One JSON file per network, state_dir/networks/ipam/<network>.json, records
its members (container id -> name, address, aliases) and the last address
handed out.  Addresses are handed out round-robin from there rather than
lowest-first, so a just-released address is not reused at once (stale ARP
entries and connections elsewhere would reach the wrong container).  Every
function here expects the caller to hold the state lock.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from sdcontainer.errors import Conflict, InvalidArgument

from . import store
from .model import Member, NetworkRecord


class Ipam:
    """The IPAM files under DIRECTORY."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _path(self, network: str) -> Path:
        return self.dir / f"{network}.json"

    def _load(self, network: str) -> dict[str, Any]:
        data = store.read_json(self._path(network))
        if not isinstance(data, dict):
            return {"last": None, "members": {}}
        return data

    def members(self, network: str) -> list[Member]:
        """Members of NETWORK, ordered by address."""
        data = self._load(network)
        out = [Member(cid, m["name"], m["ip"], tuple(m.get("aliases", ())))
               for cid, m in data["members"].items()]
        return sorted(out, key=lambda m: ipaddress.ip_address(m.ip))

    def networks(self) -> list[str]:
        """Networks that have an IPAM file."""
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json"))

    def allocate(self, net: NetworkRecord, container_id: str, name: str,
                 aliases: tuple[str, ...], want: str | None = None) -> str:
        """Give CONTAINER_ID an address on NET (WANT if given) and record it."""
        data = self._load(net.name)
        members: dict[str, Any] = data["members"]
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
            free = self._next_free(subnet, used, data.get("last"))
            if free is None:
                raise Conflict(f"no free address left on network {net.name} ({net.subnet})")
            addr = free
            data["last"] = str(addr)
        members[container_id] = {"name": name, "ip": str(addr), "aliases": list(aliases)}
        store.write_json(self._path(net.name), data)
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
        """Forget CONTAINER_ID's address on NETWORK; False if it had none."""
        data = self._load(network)
        if data["members"].pop(container_id, None) is None:
            return False
        store.write_json(self._path(network), data)
        return True

    def owners(self) -> dict[str, list[str]]:
        """Container id -> networks it holds an address on."""
        out: dict[str, list[str]] = {}
        for network in self.networks():
            for cid in self._load(network)["members"]:
                out.setdefault(cid, []).append(network)
        return out

    def drop(self, network: str) -> None:
        """Remove NETWORK's IPAM file (when the network is removed)."""
        store.remove(self._path(network))
