"""The `[network]` section of /etc/sdcontainer/sdcontainer.toml."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdcontainer.errors import InvalidArgument
from sdcontainer.util.tomlsection import read_section


@dataclass(frozen=True)
class NetworkConfig:
    """Network settings.

    subnet/bridge: the default "bridge" network (gateway is the first host).
    mtu: of every veth and bridge.  dns: nameservers for containers when the
    host's resolv.conf has none usable from a container (only loopback ones);
    never a built-in public resolver.  user_subnets: the pool that automatic
    user-network subnets (/24 each) are carved from.  resolv_conf: the host
    file that containers' resolv.conf is derived from.
    """

    subnet: str = "10.77.0.0/16"
    bridge: str = "sdc0"
    mtu: int = 1500
    dns: tuple[str, ...] = ()
    user_subnets: str = "10.78.0.0/16"
    resolv_conf: str = "/etc/resolv.conf"

    def __post_init__(self) -> None:
        for key in ("subnet", "user_subnets"):
            try:
                net = ipaddress.ip_network(getattr(self, key))
            except ValueError as e:
                raise InvalidArgument(f"[network] {key}: {e}") from None
            if net.version != 4:
                raise InvalidArgument(f"[network] {key}: only IPv4 subnets are supported")
            if net.prefixlen > 30:
                raise InvalidArgument(f"[network] {key}: subnet {net} is too small")
        if not 1 <= len(self.bridge) <= 15 or "/" in self.bridge or " " in self.bridge:
            raise InvalidArgument(f"[network] bridge: invalid interface name {self.bridge!r}")
        if not 576 <= self.mtu <= 65535:
            raise InvalidArgument(f"[network] mtu: {self.mtu} is out of range")
        for server in self.dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise InvalidArgument(f"[network] dns: invalid address {server!r}") from None

    @classmethod
    def load(cls, path: Path) -> NetworkConfig:
        """Read the [network] section of PATH; a missing file or section gives defaults."""
        return cls.from_dict(read_section(path, "network"))

    @classmethod
    def from_dict(cls, section: dict[str, Any]) -> NetworkConfig:
        """Build from a parsed [network] table, checking every key and type."""
        types: dict[str, type] = {
            "subnet": str, "bridge": str, "mtu": int, "dns": list,
            "user_subnets": str, "resolv_conf": str,
        }
        kwargs: dict[str, Any] = {}
        for key, value in section.items():
            want = types.get(key)
            if want is None:
                raise InvalidArgument(f"[network]: unknown key {key!r}")
            if not isinstance(value, want) or isinstance(value, bool):
                raise InvalidArgument(f"[network] {key}: expected {want.__name__}")
            if isinstance(value, list):
                if not all(isinstance(s, str) for s in value):
                    raise InvalidArgument("[network] dns: expected a list of addresses")
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)
