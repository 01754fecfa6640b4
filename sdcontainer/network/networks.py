"""Network records: state_dir/networks/<name>.json, one per network.

The default network "bridge" is not stored until first used; its subnet and
bridge come from the configuration.  User networks get a bridge named after
their id and, unless given one, the first free /24 of the user pool.  Every
function here expects the caller to hold the state lock.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import secrets
from pathlib import Path

from sdcontainer.errors import Conflict, InvalidArgument, NotFound

from . import store
from .config import NetworkConfig
from .model import DEFAULT_NETWORK, NETWORK_NAME_RE, NetworkRecord

# Names docker reserves for network modes; a network by those names would be
# unreachable from --network.
RESERVED = {"host", "none", "default"}
USER_BRIDGE_PREFIX = "sdcb"


def valid_name(name: str) -> bool:
    """True if NAME is a network name (docker's rule).  fullmatch, never match: the
    pattern ends in `$`, which also matches before a trailing newline ("bad\\n")."""
    return NETWORK_NAME_RE.fullmatch(name) is not None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _check_range(rng_text: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                 what: str) -> None:
    """RNG_TEXT (an IPRange) must be a subnet of NET."""
    try:
        rng = ipaddress.ip_network(rng_text)
    except ValueError as e:
        raise InvalidArgument(f"invalid {what} {rng_text}: {e}") from None
    if rng.version != net.version or not rng.subnet_of(net):  # type: ignore[arg-type]
        raise InvalidArgument(f"{what} {rng_text} is not inside subnet {net}")


def _check_details(net: ipaddress.IPv4Network, net6: ipaddress.IPv6Network | None,
                   details: NetworkRecord) -> None:
    """IPRange must be a subnet of NET and AuxiliaryAddresses addresses in it (or in
    NET6, the IPv6 subnet)."""
    if details.ip_range:
        _check_range(details.ip_range, net, "IPRange")
    if details.ip_range6 and net6 is not None:
        _check_range(details.ip_range6, net6, "IPv6 IPRange")
    for key, addr in details.aux_addresses.items():
        try:
            ok = any(ipaddress.ip_address(addr) in n for n in (net, net6) if n is not None)
        except ValueError:
            ok = False
        if not ok:
            raise InvalidArgument(f"auxiliary address {key}={addr} is not an address of "
                                  f"subnet {net}")


def _subnet6(details: NetworkRecord | None, taken: list[str]
             ) -> tuple[ipaddress.IPv6Network, ipaddress.IPv6Address] | None:
    """The IPv6 subnet and gateway DETAILS asks for, checked against TAKEN subnets."""
    if details is None or not details.subnet6:
        return None
    try:
        net6 = ipaddress.IPv6Network(details.subnet6, strict=False)
    except ValueError as e:
        raise InvalidArgument(f"invalid IPv6 subnet {details.subnet6}: {e}") from None
    if net6.prefixlen > 126:
        raise InvalidArgument(f"IPv6 subnet {net6} is too small")
    for t in taken:
        if t and net6.overlaps(ipaddress.IPv6Network(t)):
            raise Conflict(f"IPv6 subnet {net6} overlaps {t}, used by another network")
    try:
        gw6 = ipaddress.IPv6Address(details.gateway6) if details.gateway6 \
            else net6.network_address + 1
    except ValueError:
        raise InvalidArgument(f"invalid IPv6 gateway {details.gateway6}") from None
    if gw6 not in net6 or gw6 == net6.network_address:
        raise InvalidArgument(f"IPv6 gateway {gw6} is not a host address of {net6}")
    return net6, gw6


class NetworkStore:
    """The network records under DIRECTORY."""

    def __init__(self, directory: Path, config: NetworkConfig) -> None:
        self.dir = directory
        self.config = config

    def _path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def _read(self, name: str) -> NetworkRecord | None:
        data = store.read_json(self._path(name))
        return NetworkRecord.from_json(data) if isinstance(data, dict) else None

    def all(self) -> list[NetworkRecord]:
        """Every stored network, by name."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.glob("*.json")):
            rec = self._read(p.stem)
            if rec is not None:
                out.append(rec)
        return out

    def default(self) -> NetworkRecord:
        """The default network, stored on first use."""
        rec = self._read(DEFAULT_NETWORK)
        if rec is not None:
            return rec
        subnet = ipaddress.ip_network(self.config.subnet)
        rec = NetworkRecord(name=DEFAULT_NETWORK, id=secrets.token_hex(32),
                            bridge=self.config.bridge, subnet=str(subnet),
                            gateway=str(subnet.network_address + 1), created=_now())
        store.write_json(self._path(rec.name), rec.to_json())
        return rec

    def get(self, ref: str) -> NetworkRecord:
        """A network by name, full id or unique id prefix."""
        if ref == DEFAULT_NETWORK:
            return self.default()
        if valid_name(ref):
            rec = self._read(ref)
            if rec is not None:
                return rec
        if len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
            hits = [r for r in self.all() if r.id.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise InvalidArgument(f"network id prefix {ref} is ambiguous")
        raise NotFound(f"no such network: {ref}")

    def create(self, name: str, subnet: str | None, gateway: str | None, internal: bool,
               labels: dict[str, str], routed: list[ipaddress.IPv4Network] | None = None,
               details: NetworkRecord | None = None) -> NetworkRecord:
        """Store a new user network; Conflict on a taken name or overlapping subnet.

        ROUTED are subnets the host already routes (a LAN, a VPN): an automatic
        subnet avoids them, an explicit one must not overlap them.  DETAILS carries
        the options, IPAM options, IPRange and AuxiliaryAddresses to keep.
        """
        if not valid_name(name):
            raise InvalidArgument(f"invalid network name {name!r}: at most 128 characters, "
                                  "no '/' or control characters, not starting with '.' or "
                                  "a blank")
        if name in RESERVED or name == DEFAULT_NETWORK:
            raise Conflict(f"network name {name} is reserved")
        if self._read(name) is not None:
            raise Conflict(f"network {name} already exists")
        taken = [ipaddress.ip_network(r.subnet) for r in self.all()]
        taken.append(ipaddress.ip_network(self.config.subnet))
        taken += routed or []
        if subnet is None:
            net = self._auto_subnet(taken)
        else:
            try:
                parsed = ipaddress.ip_network(subnet, strict=False)
            except ValueError as e:
                raise InvalidArgument(f"invalid subnet {subnet}: {e}") from None
            if not isinstance(parsed, ipaddress.IPv4Network):
                raise InvalidArgument(f"subnet {subnet} is IPv6: give it as the IPv6 subnet "
                                      "(EnableIPv6) beside an IPv4 one")
            net = parsed
            if net.prefixlen > 30:
                raise InvalidArgument(f"subnet {net} is too small")
            for t in taken:
                if net.overlaps(t):
                    raise Conflict(f"subnet {net} overlaps {t}, used by another network "
                                   "or routed by the host")
        if gateway is None:
            gw = net.network_address + 1
        else:
            try:
                gw = ipaddress.IPv4Address(gateway)
            except ValueError:
                raise InvalidArgument(f"invalid gateway {gateway}") from None
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise InvalidArgument(f"gateway {gateway} is not a host address of {net}")
        v6 = _subnet6(details, [r.subnet6 for r in self.all()])
        if details is not None:
            _check_details(net, v6[0] if v6 else None, details)
        net_id = secrets.token_hex(32)
        rec = NetworkRecord(name=name, id=net_id, bridge=USER_BRIDGE_PREFIX + net_id[:8],
                            subnet=str(net), gateway=str(gw), internal=internal,
                            labels=dict(labels), created=_now())
        if details is not None:  # what create was given beyond the above, kept as given
            rec = dataclasses.replace(rec, options=dict(details.options),
                                      ipam_options=dict(details.ipam_options),
                                      ip_range=details.ip_range,
                                      aux_addresses=dict(details.aux_addresses),
                                      attachable=details.attachable)
        if v6 is not None and details is not None:
            rec = dataclasses.replace(rec, subnet6=str(v6[0]), gateway6=str(v6[1]),
                                      ip_range6=details.ip_range6)
        store.write_json(self._path(name), rec.to_json())
        return rec

    def _auto_subnet(self, taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
                     ) -> ipaddress.IPv4Network:
        pool = ipaddress.ip_network(self.config.user_subnets)
        assert isinstance(pool, ipaddress.IPv4Network)
        for cand in pool.subnets(new_prefix=max(24, pool.prefixlen)):
            if not any(cand.overlaps(t) for t in taken):
                return cand
        raise Conflict(f"no free subnet left in {pool}; give one with --subnet")

    def remove(self, name: str) -> None:
        """Forget network NAME."""
        store.remove(self._path(name))
