"""NetworkManager: the API the daemon calls to give containers a network.

Every public method is synchronous, holds the state lock for its whole run
(so it is safe from several threads and several processes at once) and takes
a few milliseconds: the daemon may call it from a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import secrets
import socket
from pathlib import Path

from sdcontainer import paths
from sdcontainer.errors import Conflict, InvalidArgument, NotFound, SdcError
from sdcontainer.util import crashpoints

from . import nsutil, ports
from .bridge import VETH_PREFIX, Netlink, random_mac, set_sysctl
from .config import NetworkConfig
from .dns import EmbeddedDns
from .endpoint import Endpoint, EndpointStore
from .firewall import Firewall, NetRules
from .ipam import Ipam
from .model import (
    CONTAINER_ID_RE,
    DEFAULT_NETWORK,
    Attachment,
    AttachRequest,
    EndpointSettings,
    Interface,
    Member,
    NetworkRecord,
    PortMapping,
)
from .names import NameFiles
from .networks import NetworkStore
from .store import StateLock

log = logging.getLogger(__name__)

HOSTS, RESOLV, HOSTNAME = "hosts", "resolv.conf", "hostname"


class NetworkManager:
    """Networks, container attachments, published ports and name files.

    STATE_DIR holds durable records (under networks/) and the per-container
    files (containers/<id>/{hosts,resolv.conf,hostname}, beside the container's
    record, as docker keeps them); RUN_DIR holds only the namespace files
    (netns/<id>).  The name files are bound read-write into containers, so
    they must not be on /run: a container filling its /etc/hosts fills the
    state disk, which removal copes with, not the tmpfs systemd needs.
    """

    def __init__(self, state_dir: Path, run_dir: Path, config: NetworkConfig) -> None:
        self.config = config
        netdir = Path(state_dir) / "networks"
        self.networks = NetworkStore(netdir, config)
        self.ipam = Ipam(netdir / "ipam")
        self.endpoints = EndpointStore(netdir / "endpoints")
        self.netns_dir = Path(run_dir) / "netns"
        self.files_dir = Path(state_dir) / "containers"
        self.lock = StateLock(netdir / ".lock")
        self.firewall = Firewall()
        self.names = NameFiles(self.ipam, self.endpoints, config)
        self._nl: Netlink | None = None
        # Reservation sockets of published host ports, per container.
        self._held: dict[str, list[socket.socket]] = {}
        self._netns_dir_ready = False
        self._bridges_done: set[str] = set()

    def use_dns(self, server: EmbeddedDns | None) -> None:
        """Serve names on user networks with SERVER (dns.py) from now on: set before
        reconcile, which starts the servers of the networks whose bridges exist."""
        with self.lock.hold():
            self.names.dns = server

    def check_subnet(self) -> None:
        """Refuse to start when the host already routes into the default network's subnet
        through another device (a LAN, a VPN, another container engine's bridge):
        containers would shadow those hosts."""
        net = ipaddress.ip_network(self.config.subnet)
        for dst, dev in self.nl.routes_by_device():
            if dev != self.config.bridge and dst.overlaps(net):
                raise InvalidArgument(
                    f"[network] subnet {net} clashes with the host's route to {dst} on {dev}: "
                    f"set another subnet in {paths.CONFIG_FILE}")

    # ---- plumbing -------------------------------------------------------

    @property
    def nl(self) -> Netlink:
        """Our route socket in the host namespace (opened on first use)."""
        if self._nl is None:
            self._nl = Netlink()
        return self._nl

    def close(self) -> None:
        """Close our netlink socket and the host-port reservations.

        Kernel objects and nft rules stay: a restarted daemon's reconcile
        finds them and takes the reservations again.
        """
        with self.lock.hold():
            for socks in self._held.values():
                ports.release(socks)
            self._held.clear()
            if self._nl is not None:
                self._nl.close()
                self._nl = None

    def _ensure_network_up(self, net: NetworkRecord) -> None:
        """The network's bridge, firewall set entries and sysctls, made on first use."""
        subnet = ipaddress.ip_network(net.subnet)
        if self.nl.index(net.bridge) is not None and net.bridge in self._bridges_done:
            return
        self.nl.ensure_bridge(net.bridge, net.gateway, subnet.prefixlen, self.config.mtu)
        # Routing from the host to containers, and DNAT of 127.0.0.1 (see firewall.py).
        set_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        set_sysctl(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet", "1")
        self.firewall.add_network(NetRules(net.bridge, net.subnet, net.internal))
        if net.subnet6:
            # IPv6 stays on the bridge: containers reach each other and the host; we
            # turn on no IPv6 forwarding (that would change how the host takes router
            # advertisements), so nothing is routed or NATed out.
            self.nl.add_address6(net.bridge, net.gateway6,
                                 ipaddress.ip_network(net.subnet6).prefixlen)
        if net.user_defined and self.names.dns is not None:
            # The network's DNS server, from the moment its bridge has the gateway.
            self.names.dns.serve(net.name, net.bridge, net.gateway, self.names.zone(net.name))
        self._bridges_done.add(net.bridge)

    def _container_files(self, container_id: str) -> tuple[Path, Path, Path]:
        d = self.files_dir / container_id
        return d / HOSTS, d / RESOLV, d / HOSTNAME

    def _own_files(self, container_id: str, ep: Endpoint | None) -> list[Path]:
        """The name files of CONTAINER_ID: where they are now, and where its record
        says they were made (an older daemon's place), unless they are another
        container's files that it shares (network mode container:)."""
        found = dict.fromkeys(self._container_files(container_id))
        if ep is not None:
            att = ep.attachment
            for f in (att.hosts_path, att.resolv_path, att.hostname_path):
                if f and Path(f).parent.name == container_id:
                    found[Path(f)] = None
        return list(found)

    # ---- networks -------------------------------------------------------

    def create_network(self, name: str, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, labels: dict[str, str] | None = None,
                       details: NetworkRecord | None = None) -> NetworkRecord:
        """Create a user network (its bridge is made when the first container joins)."""
        with self.lock.hold():
            return self.networks.create(name, subnet, gateway, internal, labels or {},
                                        routed=self.nl.routed_subnets(), details=details)

    def list_networks(self) -> list[NetworkRecord]:
        """Every network, the default one included."""
        with self.lock.hold():
            default = self.networks.default()
            return [default] + [n for n in self.networks.all() if n.name != DEFAULT_NETWORK]

    def inspect(self, name: str) -> NetworkRecord:
        """A network by name or id (NotFound if none)."""
        with self.lock.hold():
            return self.networks.get(name)

    def members(self, name: str) -> list[Member]:
        """The containers on a network, with their MAC address and endpoint (the
        host-side veth) from their endpoint records."""
        with self.lock.hold():
            net = self.networks.get(name).name
            out = []
            for m in self.ipam.members(net):
                ep = self.endpoints.get(m.container_id)
                iface = next((i for i in ep.attachment.interfaces if i.network == net),
                             None) if ep is not None else None
                if iface is not None:
                    m = dataclasses.replace(m, mac=iface.mac, endpoint_id=iface.host_ifname)
                out.append(m)
            return out

    def remove_network(self, name: str) -> None:
        """Remove a user network; Conflict while containers are attached to it."""
        with self.lock.hold():
            self._remove_network_locked(self.networks.get(name))

    def _remove_network_locked(self, net: NetworkRecord) -> None:
        if not net.user_defined:
            raise Conflict(f"the default network {net.name} cannot be removed")
        attached = self.ipam.members(net.name)
        if attached:
            raise Conflict(f"network {net.name} has {len(attached)} attached container(s)")
        if self.names.dns is not None:
            self.names.dns.stop(net.name)
        self.nl.delete_link(net.bridge)
        self.firewall.remove_network(NetRules(net.bridge, net.subnet, net.internal))
        self._bridges_done.discard(net.bridge)
        self.ipam.drop(net.name)
        self.networks.remove(net.name)

    def prune(self) -> list[str]:
        """Remove every user network without containers; return their names."""
        with self.lock.hold():
            gone = []
            for net in self.networks.all():
                if net.user_defined and not self.ipam.members(net.name):
                    self._remove_network_locked(net)
                    gone.append(net.name)
            return gone

    # ---- containers -----------------------------------------------------

    def attach(self, req: AttachRequest) -> Attachment:
        """Give a container its network; on failure nothing is left behind."""
        req.validate()
        cid = req.container_id
        mode = req.mode.split(":", 1)[0]
        with self.lock.hold():
            if self.endpoints.get(cid) is not None:
                raise Conflict(f"container {cid[:12]} is already attached")
            try:
                if mode == "bridge":
                    att = self._attach_bridge(req)
                elif mode == "none":
                    att = self._attach_none(req)
                elif mode == "host":
                    att = self._attach_host(req)
                else:
                    att = self._attach_container(req)
            except BaseException:
                try:
                    self._detach_locked(cid)
                except SdcError as e:
                    log.warning("attach %s: cleaning up after failure: %s", cid[:12], e)
                raise
            return att

    def _endpoint(self, req: AttachRequest, att: Attachment, owns_netns: bool) -> Endpoint:
        return Endpoint(attachment=att, name=req.name, hostname=req.hostname,
                        domainname=req.domainname, aliases=list(req.aliases),
                        links=list(req.links), add_hosts=list(req.add_hosts),
                        dns=list(req.dns), dns_search=list(req.dns_search),
                        dns_options=list(req.dns_options), owns_netns=owns_netns)

    def _attach_bridge(self, req: AttachRequest) -> Attachment:
        cid = req.container_id
        nets = [self.networks.get(n) for n in req.networks]
        # Ports first: a taken host port must fail before anything is made.
        wanted = [single for m in req.publish for single in m.expand()]
        resolved, socks = ports.reserve(wanted)
        self._held[cid] = socks
        ifaces = []
        for i, net in enumerate(nets):
            host_if = self._free_veth_name(f"{VETH_PREFIX}{cid[:8]}{i if i else ''}")
            ifaces.append(self._new_interface(net, cid, req.name, req.effective(i), i, host_if))
        crashpoints.hit("ip-allocated")
        hosts_p, resolv_p, hostname_p = self._container_files(cid)
        netns = self.netns_dir / cid
        att = Attachment(container_id=cid, mode="bridge", netns_path=str(netns),
                         interfaces=tuple(ifaces), ports=tuple(resolved),
                         hosts_path=str(hosts_p), resolv_path=str(resolv_p),
                         hostname_path=str(hostname_p))
        ep = self._endpoint(req, att, owns_netns=True)
        # Recorded before any kernel object exists: a crash from here on is
        # cleaned up by reconcile from this record.
        self.endpoints.put(ep)
        for net in nets:
            self._ensure_network_up(net)
        inner = self._make_netns(netns, with_fd=True)
        crashpoints.hit("netns-made")
        try:
            for iface, net in zip(ifaces, nets, strict=True):
                self.nl.add_veth(iface.host_ifname, cid, net.bridge, inner.fd, iface.ifname,
                                 iface.mac, self.config.mtu)
            for i, iface in enumerate(ifaces):
                inner.nl.configure_inside(iface.ifname, iface.ip, iface.prefixlen,
                                          iface.gateway if i == 0 else None, self.config.mtu,
                                          iface.link_local_ips, _v6(iface, i == 0))
            crashpoints.hit("veth-up")
        finally:
            inner.close()
        if resolved:
            self.firewall.add_ports(cid, ifaces[0].ip, resolved)
            crashpoints.hit("nft-rule-added")
        self.names.write_all(ep, keep_loopback=False)
        self.names.refresh_peers(ep, [n.name for n in nets if n.user_defined])
        return att

    def _new_interface(self, net: NetworkRecord, cid: str, name: str, s: EndpointSettings,
                       n: int, host_ifname: str) -> Interface:
        """An address on NET for CID (recorded in IPAM) and the interface ethN it gets."""
        # Network-scoped aliases resolve only on user networks, as in docker.
        if s.ip6 and not net.subnet6:
            raise InvalidArgument(f"network {net.name} has no IPv6 subnet for address {s.ip6}")
        ip = self.ipam.allocate(net, cid, name, s.aliases if net.user_defined else (),
                                s.ip or None)
        ip6 = self.ipam.allocate6(net, cid, s.ip6 or None) if net.subnet6 else ""
        return Interface(network=net.name, network_id=net.id, ifname=f"eth{n}",
                         host_ifname=host_ifname, ip=ip,
                         prefixlen=ipaddress.ip_network(net.subnet).prefixlen,
                         gateway=net.gateway, mac=s.mac.lower() or random_mac(),
                         aliases=s.aliases, links=tuple(f"{t}:{a}" for t, a in s.links),
                         ipam_ip=s.ip, driver_opts=dict(s.driver_opts),
                         link_local_ips=s.link_local_ips, ip6=ip6,
                         prefixlen6=ipaddress.ip_network(net.subnet6).prefixlen if ip6 else 0,
                         gateway6=net.gateway6 if ip6 else "", ipam_ip6=s.ip6)

    def _free_veth_name(self, preferred: str) -> str:
        """PREFERRED, or a random sdcv name if a container with the same id prefix has it."""
        name = preferred
        while self.nl.index(name) is not None:
            name = VETH_PREFIX + secrets.token_hex(4)
        return name

    def _make_netns(self, path: Path, with_fd: bool) -> _Inner:
        if not self._netns_dir_ready:
            nsutil.make_shared_dir(self.netns_dir)
            self._netns_dir_ready = True

        def setup() -> _Inner:
            inner = _Inner(Netlink(), os.open("/proc/thread-self/ns/net",
                                              os.O_RDONLY | os.O_CLOEXEC) if with_fd else -1)
            inner.nl.loopback_up()
            return inner

        return nsutil.create_netns(path, setup)

    def _attach_none(self, req: AttachRequest) -> Attachment:
        cid = req.container_id
        netns = self.netns_dir / cid
        att = self._simple_attachment(req, "none", str(netns))
        ep = self._endpoint(req, att, owns_netns=True)
        self.endpoints.put(ep)
        self._make_netns(netns, with_fd=False).close()
        self.names.write_all(ep, keep_loopback=False)
        return att

    def _attach_host(self, req: AttachRequest) -> Attachment:
        att = self._simple_attachment(req, "host", None)
        ep = self._endpoint(req, att, owns_netns=False)
        self.endpoints.put(ep)
        self.names.write_all(ep, keep_loopback=True)
        return att

    def _attach_container(self, req: AttachRequest) -> Attachment:
        assert req.join_netns is not None
        target_path = Path(req.join_netns)
        target = None
        if target_path.parent == self.netns_dir and CONTAINER_ID_RE.match(target_path.name):
            target = self.endpoints.get(target_path.name)
        if target is not None:
            # Share the target's files, as docker does: its hosts file stays
            # current for both, since the two share one network namespace.
            t = target.attachment
            att = Attachment(container_id=req.container_id, mode="container",
                             netns_path=req.join_netns, interfaces=t.interfaces, ports=(),
                             hosts_path=t.hosts_path, resolv_path=t.resolv_path,
                             hostname_path=t.hostname_path)
            self.endpoints.put(self._endpoint(req, att, owns_netns=False))
            return att
        att = self._simple_attachment(req, "container", req.join_netns)
        ep = self._endpoint(req, att, owns_netns=False)
        self.endpoints.put(ep)
        self.names.write_all(ep, keep_loopback=False)
        return att

    def _simple_attachment(self, req: AttachRequest, mode: str, netns: str | None) -> Attachment:
        hosts_p, resolv_p, hostname_p = self._container_files(req.container_id)
        return Attachment(container_id=req.container_id, mode=mode, netns_path=netns,
                          interfaces=(), ports=(), hosts_path=str(hosts_p),
                          resolv_path=str(resolv_p), hostname_path=str(hostname_p))

    # ---- connect / disconnect -------------------------------------------

    def connect(self, container_id: str, network: str, aliases: list[str] | None = None,
                settings: EndpointSettings | None = None) -> Attachment:
        """Add a running bridge-mode container to another network (a new ethN), with
        SETTINGS (address, MAC, aliases, links there); ALIASES are added to theirs."""
        settings = settings or EndpointSettings()
        if aliases:
            settings = dataclasses.replace(settings, aliases=(*settings.aliases, *aliases))
        settings.validate(network)
        with self.lock.hold():
            ep = self._bridge_endpoint(container_id)
            net = self.networks.get(network)
            att = ep.attachment
            if any(i.network == net.name for i in att.interfaces):
                raise Conflict(f"container {container_id[:12]} is already on network {net.name}")
            used = {int(i.ifname[3:]) for i in att.interfaces}
            n = min(set(range(len(used) + 1)) - used)
            iface = self._new_interface(
                net, container_id, ep.name, settings, n,
                self._free_veth_name(f"{VETH_PREFIX}{container_id[:8]}{n}"))
            ep.attachment = dataclasses.replace(att, interfaces=(*att.interfaces, iface))
            self.endpoints.put(ep)
            try:
                self._ensure_network_up(net)
                self._plug(ep, iface, net.bridge, default_route=not att.interfaces)
            except BaseException:
                with contextlib.suppress(SdcError, OSError):
                    self.nl.delete_link(iface.host_ifname)
                self.ipam.release(net.name, container_id)
                ep.attachment = att
                self.endpoints.put(ep)
                raise
            self.names.rewrite_hosts(ep)
            self.names.refresh_peers(ep, [net.name])
            return ep.attachment

    def disconnect(self, container_id: str, network: str) -> Attachment:
        """Take a running bridge-mode container off one of its networks."""
        with self.lock.hold():
            ep = self._bridge_endpoint(container_id)
            net = self.networks.get(network)
            att = ep.attachment
            iface = next((i for i in att.interfaces if i.network == net.name), None)
            if iface is None:
                raise NotFound(f"container {container_id[:12]} is not on network {net.name}")
            if att.ports and iface is att.interfaces[0]:
                raise Conflict(f"ports of container {container_id[:12]} are published on "
                               f"network {net.name}")
            self.nl.delete_link(iface.host_ifname)
            self.ipam.release(net.name, container_id)
            rest = tuple(i for i in att.interfaces if i is not iface)
            ep.attachment = dataclasses.replace(att, interfaces=rest)
            self.endpoints.put(ep)
            if rest and iface is att.interfaces[0] and att.netns_path:
                # The default route left with eth0: point it at the next network.
                first = rest[0]

                def reroute() -> None:
                    nl = Netlink()
                    try:
                        nl.default_route(first.ifname, first.gateway, first.gateway6)
                    finally:
                        nl.close()

                nsutil.run_in_netns(att.netns_path, reroute)
            self.names.rewrite_hosts(ep)
            self.names.refresh_peers(ep, [net.name])
            return ep.attachment

    def remove_link(self, container_id: str, alias: str) -> bool:
        """Drop the legacy link ALIAS (`--link NAME:ALIAS`) from a running container's
        hosts file; False if it had none by that alias."""
        with self.lock.hold():
            ep = self.endpoints.get(container_id)
            if ep is None:
                return False
            kept = [link for link in ep.links if link[1] != alias]
            if len(kept) == len(ep.links):
                return False
            ep.links = kept
            self.endpoints.put(ep)
            self.names.rewrite_hosts(ep)
            self.names.publish_zones([i.network for i in ep.attachment.interfaces])
            return True

    def _bridge_endpoint(self, container_id: str) -> Endpoint:
        ep = self.endpoints.get(container_id)
        if ep is None:
            raise NotFound(f"container {container_id[:12]} has no network attachment")
        if ep.attachment.mode != "bridge" or not ep.attachment.netns_path:
            raise InvalidArgument(f"container {container_id[:12]} is in network mode "
                                  f"{ep.attachment.mode}, not bridge")
        return ep

    def _plug(self, ep: Endpoint, iface: Interface, bridge: str, default_route: bool) -> None:
        """A veth from BRIDGE into EP's existing namespace, configured as IFACE."""
        assert ep.attachment.netns_path is not None

        def setup() -> _Inner:
            return _Inner(Netlink(), os.open("/proc/thread-self/ns/net",
                                             os.O_RDONLY | os.O_CLOEXEC))

        inner = nsutil.run_in_netns(ep.attachment.netns_path, setup)
        try:
            self.nl.add_veth(iface.host_ifname, ep.container_id, bridge, inner.fd, iface.ifname,
                             iface.mac, self.config.mtu)
            inner.nl.configure_inside(iface.ifname, iface.ip, iface.prefixlen,
                                      iface.gateway if default_route else None, self.config.mtu,
                                      iface.link_local_ips, _v6(iface, default_route))
        finally:
            inner.close()

    def rename(self, container_id: str, name: str) -> None:
        """A running container was renamed: its own and its peers' hosts files name it
        NAME from now on (no-op without an attachment)."""
        with self.lock.hold():
            ep = self.endpoints.get(container_id)
            if ep is None:
                return
            ep.name = name
            self.endpoints.put(ep)
            for iface in ep.attachment.interfaces:
                self.ipam.rename(iface.network, container_id, name)
            if ep.attachment.mode == "bridge":
                self.names.rewrite_hosts(ep)
                self.names.refresh_peers(ep, [i.network for i in ep.attachment.interfaces])

    # ---- teardown -------------------------------------------------------

    def detach(self, container_id: str) -> None:
        """Undo attach: idempotent, and fine on a half-made or unknown attachment."""
        if not CONTAINER_ID_RE.match(container_id):
            raise InvalidArgument(f"invalid container id {container_id!r}")
        with self.lock.hold():
            self._detach_locked(container_id)

    def _detach_locked(self, cid: str) -> None:
        ports.release(self._held.pop(cid, []))
        ep = self.endpoints.get(cid)
        errors: list[str] = []

        def attempt(what: str, fn: object) -> None:
            try:
                fn()  # type: ignore[operator]
            except (OSError, SdcError) as e:
                log.warning("detach %s: %s: %s", cid[:12], what, e)
                errors.append(f"{what}: {e}")

        if ep is None:
            # Unknown or half-made before its record: look everywhere.
            veths = [n for n, owner in self.nl.our_veths().items() if owner == cid]
            networks = [n for n, owners in ((n, self.ipam.members(n)) for n in self.ipam.networks())
                        if any(m.container_id == cid for m in owners)]
            attempt("firewall", lambda: self.firewall.remove_ports(only=cid))
            owns_netns = True
        else:
            att = ep.attachment
            veths = [i.host_ifname for i in att.interfaces] if ep.owns_netns else []
            networks = [i.network for i in att.interfaces] if ep.owns_netns else []
            if att.ports:
                attempt("firewall", lambda: self.firewall.remove_ports(only=cid))
            owns_netns = ep.owns_netns
        for v in veths:
            attempt(f"link {v}", lambda v=v: self.nl.delete_link(v))
        if owns_netns:
            attempt("netns", lambda: nsutil.remove_netns(self.netns_dir / cid))
        for network in networks:
            attempt(f"ipam {network}", lambda n=network: self.ipam.release(n, cid))
        for p in self._own_files(cid, ep):
            attempt(f"remove {p.name}", lambda p=p: p.unlink(missing_ok=True))
        # The directory is the container's record directory, which the engine removes.
        self.endpoints.remove(cid)
        if ep is not None:
            user_nets = [n for n in networks if n != DEFAULT_NETWORK]
            try:
                self.names.refresh_peers(ep, user_nets)
            except (OSError, SdcError) as e:
                # Only the peers' view is stale (by this one line, until their next
                # change); this container is gone all the same, so no error.
                log.warning("detach %s: updating the peers' hosts files: %s", cid[:12], e)
        if errors:
            raise SdcError(f"detach {cid[:12]}: " + "; ".join(errors))

    # ---- queries and recovery -------------------------------------------

    def attachment(self, container_id: str) -> Attachment | None:
        """The container's current attachment, if it has one."""
        with self.lock.hold():
            ep = self.endpoints.get(container_id)
            return ep.attachment if ep is not None else None

    def port(self, container_id: str) -> list[PortMapping]:
        """The container's published ports, host ports resolved ([] if none)."""
        att = self.attachment(container_id)
        return list(att.ports) if att is not None else []

    def reconcile(self, live_ids: set[str]) -> list[str]:
        """Remove everything that belongs to containers not in LIVE_IDS.

        Meant for daemon start-up after a crash: endpoint records, veths,
        namespace files, IPAM entries, nft rules and name files of dead
        containers go; the firewall's base rules and every network's set
        entries are restored, and live containers' host ports re-reserved.
        Returns the ids of the containers whose records were removed.
        """
        with self.lock.hold():
            return self._reconcile_locked(set(live_ids))

    def _reconcile_locked(self, live: set[str]) -> list[str]:
        self.firewall.ensure_base(force=True)
        for net in self.networks.all():
            if self.nl.index(net.bridge) is not None:
                self._bridges_done.discard(net.bridge)
                self._ensure_network_up(net)
        removed = []
        for cid in self.endpoints.ids():
            if cid not in live:
                try:
                    self._detach_locked(cid)
                except SdcError as e:
                    log.warning("reconcile: %s", e)
                removed.append(cid)
        keep_links: set[str] = set()
        with_rules = self.firewall.owners()
        for cid in live:
            ep = self.endpoints.get(cid)
            if ep is None:
                continue
            att = ep.attachment
            keep_links |= {i.host_ifname for i in att.interfaces}
            if not att.ports or att.mode != "bridge":
                continue
            if cid not in self._held:
                try:
                    self._held[cid] = ports.reserve(list(att.ports))[1]
                except SdcError as e:
                    log.warning("reconcile: container %s: %s", cid[:12], e)
            if cid not in with_rules and att.ip is not None:
                # Someone flushed our table (a firewall reload): put the DNAT back.
                self.firewall.add_ports(cid, att.ip, list(att.ports))
        for name in self.nl.our_veths():
            if name not in keep_links:
                self.nl.delete_link(name)
        if self.netns_dir.is_dir():
            for f in self.netns_dir.iterdir():
                if CONTAINER_ID_RE.match(f.name) and f.name not in live:
                    nsutil.remove_netns(f)
        self.firewall.remove_ports(keep=live)
        for cid, networks in self.ipam.owners().items():
            if cid not in live:
                for network in networks:
                    self.ipam.release(network, cid)
        if self.files_dir.is_dir():
            for d in self.files_dir.iterdir():
                if CONTAINER_ID_RE.match(d.name) and d.name not in live:
                    for p in self._container_files(d.name):
                        p.unlink(missing_ok=True)
        # Earlier versions kept the name files under RUN_DIR/containers: an
        # upgraded daemon removes those of containers that no longer run.
        old_files = self.netns_dir.parent / "containers"
        if old_files.is_dir():
            for d in old_files.iterdir():
                if CONTAINER_ID_RE.match(d.name) and d.name not in live:
                    for name in (HOSTS, RESOLV, HOSTNAME):
                        (d / name).unlink(missing_ok=True)
        for cid in list(self._held):
            if cid not in live:
                ports.release(self._held.pop(cid))
        self.names.publish_zones([n.name for n in self.networks.all()])
        return removed


def _v6(iface: Interface, default_route: bool) -> tuple[str, int, str | None] | None:
    """IFACE's IPv6 address for configure_inside, if it has one."""
    if not iface.ip6:
        return None
    return iface.ip6, iface.prefixlen6, iface.gateway6 if default_route else None


class _Inner:
    """Handles into a container's namespace: a route socket and a namespace fd."""

    def __init__(self, nl: Netlink, fd: int) -> None:
        self.nl = nl
        self.fd = fd

    def close(self) -> None:
        self.nl.close()
        if self.fd >= 0:
            os.close(self.fd)
