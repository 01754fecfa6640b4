"""nftables rules, all in one table of our own: `table inet sdcontainer`.

We never touch another table, and we never flush the whole ruleset.  The base
chains hold a fixed set of rules that refer to named sets; networks add their
bridge and subnet to those sets, and published ports are rules in the
`published` chain tagged with the container id as a comment, so a
container's rules can be found and deleted by handle.

Why each rule (see docs/networking.md for more):
- raw prerouting drops packets for 127.0.0.0/8 that arrive on our bridges:
  route_localnet (below) would otherwise let a container reach services the
  host binds to localhost only (CVE-2020-8558 for kube-proxy).
- nat prerouting and output jump to `published` for packets to a local
  address, so a published port answers on every host address, from other
  hosts, from containers (hairpin) and from the host itself, 127.0.0.1
  included.  DNAT of 127.0.0.1 needs route_localnet=1 on the bridge (set by
  the manager) and a masquerade of the loopback source, as docker and
  netavark do: that avoids a userland proxy process per port.
- nat postrouting masquerades traffic leaving our subnets to the outside, and
  DNATed traffic from a container back onto its own bridge (hairpin: else the
  reply would go straight back, bypassing the conntrack that undoes the DNAT).
- filter forward lets traffic into a bridge only if it is bridged within it,
  a reply, or DNATed to a published port: a container's unpublished ports are
  not reachable from other networks or from the outside (moby#45610), and two
  user networks cannot reach each other.  Internal networks do not forward.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from sdcontainer.errors import SdcError

from .model import PortMapping

log = logging.getLogger(__name__)

TABLE = "sdcontainer"
FAMILY = "inet"
T = f"{FAMILY} {TABLE}"

# Chains whose rules are fixed: rewritten (flush + add) by ensure_base, so
# running it again, from several processes, or after a crash is harmless.
_BASE = f"""
add table {T}
add set {T} bridges {{ type ifname; }}
add set {T} internal {{ type ifname; }}
add set {T} intra {{ type ifname . ifname; }}
add set {T} masq {{ type ipv4_addr; flags interval; }}
add set {T} subnets {{ type ipv4_addr; flags interval; }}
add chain {T} published
add chain {T} raw-prerouting {{ type filter hook prerouting priority raw; policy accept; }}
add chain {T} nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain {T} nat-output {{ type nat hook output priority -100; policy accept; }}
add chain {T} nat-postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain {T} forward {{ type filter hook forward priority filter; policy accept; }}
flush chain {T} raw-prerouting
flush chain {T} nat-prerouting
flush chain {T} nat-output
flush chain {T} nat-postrouting
flush chain {T} forward
add rule {T} raw-prerouting iifname @bridges ip daddr 127.0.0.0/8 drop
add rule {T} nat-prerouting fib daddr type local jump published
add rule {T} nat-output fib daddr type local jump published
add rule {T} nat-postrouting oifname @bridges ip saddr 127.0.0.0/8 masquerade
add rule {T} nat-postrouting oifname @bridges ct status dnat ip saddr @subnets masquerade
add rule {T} nat-postrouting oifname != @bridges ip saddr @masq masquerade
add rule {T} forward iifname . oifname @intra accept
add rule {T} forward iifname @internal drop
add rule {T} forward oifname @internal drop
add rule {T} forward oifname @bridges ct state established,related accept
add rule {T} forward oifname @bridges ct status dnat accept
add rule {T} forward oifname @bridges drop
"""


def nft(script: str | None = None, *args: str) -> str:
    """Run nft: SCRIPT through `nft -f -` (one atomic transaction), or a command ARGS.

    The only place that runs nft.  A measured `nft -f -` costs ~3 ms; the
    libnftables binding was slower per call (it rebuilds its caches each time).
    """
    argv = ["nft", *args] if script is None else ["nft", "-f", "-"]
    log.debug("+ %s%s", " ".join(argv),
              f" <<< {script.strip()}".replace("\n", "; ") if script else "")
    try:
        proc = subprocess.run(argv, input=script, capture_output=True, text=True,
                              env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                                   "LANG": "C.UTF-8"}, check=False)
    except FileNotFoundError:
        raise SdcError("nft not found: install the nftables package") from None
    if proc.returncode != 0:
        # nft prints "<where>: Error: <what>", then the offending line.
        lines = proc.stderr.splitlines()
        err = next((ln.split("Error:", 1)[1].strip() for ln in lines if "Error:" in ln),
                   lines[0] if lines else f"exit status {proc.returncode}")
        culprit = lines[1].strip() if len(lines) > 1 else ""
        raise SdcError(f"nft: {err}" + (f" in: {culprit}" if culprit else ""))
    return proc.stdout


def _q(s: str) -> str:
    """An nft string literal (interface names and ids only have safe characters)."""
    return '"' + s.replace('"', "") + '"'


@dataclass(frozen=True)
class NetRules:
    """What the firewall needs to know about a network."""

    bridge: str
    subnet: str
    internal: bool


def _net_elements(n: NetRules) -> list[str]:
    b = _q(n.bridge)
    lines = [
        f"add element {T} bridges {{ {b} }}",
        f"add element {T} intra {{ {b} . {b} }}",
        f"add element {T} subnets {{ {n.subnet} }}",
        f"add element {T} {'internal' if n.internal else 'masq'} {{ "
        f"{b if n.internal else n.subnet} }}",
    ]
    return lines


def _dnat_rules(container_id: str, ip: str, mappings: list[PortMapping]) -> list[str]:
    lines = []
    for m in mappings:
        match = "meta nfproto ipv4 "
        if m.host_ip:
            match += f"ip daddr {m.host_ip} "
        lines.append(f"add rule {T} published {match}{m.proto} dport {m.host_port} "
                     f"dnat ip to {ip}:{m.container_port} comment {_q(container_id)}")
    return lines


class Firewall:
    """Our nftables table.  Callers serialise calls (the manager's lock)."""

    def __init__(self) -> None:
        self._base_done = False

    def ensure_base(self, force: bool = False) -> None:
        """Create the table, sets and base chains (idempotent; once per process)."""
        if self._base_done and not force:
            return
        nft(_BASE)
        self._base_done = True

    def _apply(self, script: str) -> None:
        """Run SCRIPT; if it fails, rebuild the base once and retry.

        Our table may have been deleted behind this process's back (another
        process's reconcile, an admin, a firewall reload).
        """
        self.ensure_base()
        try:
            nft(script)
        except SdcError:
            self.ensure_base(force=True)
            nft(script)

    def add_network(self, n: NetRules) -> None:
        """Put a network's bridge and subnet into the sets (idempotent)."""
        self._apply("\n".join(_net_elements(n)) + "\n")

    def remove_network(self, n: NetRules) -> None:
        """Take a network out of the sets (idempotent)."""
        adds = _net_elements(n)
        # nft 1.0.6 has no `destroy`: adding first makes the delete succeed
        # whether or not the element was there, in one transaction.
        dels = [a.replace("add element", "delete element", 1) for a in adds]
        self._apply("\n".join(adds + dels) + "\n")

    def add_ports(self, container_id: str, ip: str, mappings: list[PortMapping]) -> None:
        """DNAT rules for MAPPINGS (single ports) to IP, tagged with CONTAINER_ID."""
        if not mappings:
            return
        self._apply("\n".join(_dnat_rules(container_id, ip, mappings)) + "\n")

    def _published(self) -> list[dict[str, Any]]:
        out = nft(None, "-j", "list", "chain", FAMILY, TABLE, "published")
        try:
            items = json.loads(out).get("nftables", [])
        except (ValueError, AttributeError):
            raise SdcError("nft: cannot parse the JSON listing of our rules") from None
        return [i["rule"] for i in items if "rule" in i]

    def owners(self) -> set[str]:
        """Container ids that have rules in the published chain."""
        self.ensure_base()
        return {r.get("comment", "") for r in self._published()} - {""}

    def remove_ports(self, keep: set[str] | None = None, only: str | None = None) -> int:
        """Delete published rules of container ONLY, or of every container not in KEEP.

        Returns how many rules were deleted.
        """
        self.ensure_base()
        doomed = []
        for r in self._published():
            owner = r.get("comment", "")
            if (only is not None and owner == only) or (keep is not None and owner not in keep):
                doomed.append(f"delete rule {T} published handle {r['handle']}")
        if doomed:
            nft("\n".join(doomed) + "\n")
        return len(doomed)

    def rules_for(self, container_id: str) -> int:
        """How many published rules CONTAINER_ID has (for tests and checks)."""
        self.ensure_base()
        return sum(1 for r in self._published() if r.get("comment") == container_id)
