"""The embedded DNS server of user-defined networks: container names for tools that
ask DNS directly (busybox nslookup, nginx's resolver, dig, Node's dns.resolve).

Each user network's server listens on port 53 (UDP and TCP) of the network's
gateway address, in the host's namespace, bound to the network's bridge, so only
queries that arrive from that network's containers reach it.  It answers A and
AAAA (and PTR) for the names of that network's members only (container name,
network aliases, 12-character id prefix, and the asker's own link aliases), from
an in-memory table (`Zone`) the network manager replaces on every change of
membership.  Every other name gets REFUSED, never NXDOMAIN, and nothing is
forwarded: a container's resolv.conf lists the gateway first and the upstream
servers after it, and resolvers move on to those (docs/networking.md, "Names").

The message code is deliberately small and strict: one question, no compression
in it, class IN; anything malformed is dropped without a reply.  UDP answers
never exceed 512 bytes (TC is set instead, and the client retries over TCP).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from .endpoint import Endpoint
from .model import Member

log = logging.getLogger(__name__)

PORT = 53
TTL = 600  # docker's
UDP_LIMIT = 512
TCP_LIMIT = 65535
TCP_IDLE = 10.0  # seconds a TCP client may keep a connection without a full query

T_A, T_PTR, T_AAAA, T_ANY = 1, 12, 28, 255
C_IN = 1
NOERROR, NOTIMP, REFUSED = 0, 4, 5

_QR, _AA, _TC, _RD = 0x8000, 0x0400, 0x0200, 0x0100
_HEADER = struct.Struct("!HHHHHH")


# ---- messages -----------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A parsed query: its id, flags, and its one question (name as sent, wire form)."""

    id: int
    flags: int
    qname: bytes  # the wire form, echoed back as received (0x20 case randomisation)
    labels: tuple[bytes, ...]
    qtype: int
    qclass: int

    @property
    def opcode(self) -> int:
        """The query's opcode (0: QUERY)."""
        return (self.flags >> 11) & 0xF

    @property
    def name(self) -> str:
        """The name, lower-cased, dotted, without the root dot; "" if not ASCII."""
        try:
            return b".".join(self.labels).decode("ascii").lower()
        except UnicodeDecodeError:
            return ""


@dataclass(frozen=True)
class Record:
    """An answer record for the question's name (written as a pointer to it)."""

    rtype: int
    rdata: bytes
    ttl: int = TTL


def parse_query(data: bytes) -> Query | None:
    """DATA as a query, or None if it is not a well-formed one-question query
    (responses, truncated or over-long names, compression in the question)."""
    if len(data) < _HEADER.size:
        return None
    qid, flags, qd, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & _QR or qd != 1:
        return None
    pos = _HEADER.size
    labels: list[bytes] = []
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        if n & 0xC0:  # a pointer (or a reserved label type): never in a query's question
            return None
        pos += 1
        if n == 0:
            break
        if pos + n > len(data):
            return None
        labels.append(data[pos:pos + n])
        pos += n
    qname = data[_HEADER.size:pos]
    if len(qname) > 255 or pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, pos)
    return Query(qid, flags, qname, tuple(labels), qtype, qclass)


def encode_name(name: str) -> bytes:
    """NAME (dotted ASCII) in wire form."""
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_response(q: Query, rcode: int, answers: Sequence[Record] = (),
                   limit: int = UDP_LIMIT) -> bytes:
    """The reply to Q: its question echoed, ANSWERS for its name, authoritative; if
    that would exceed LIMIT bytes, the question alone with TC set."""
    flags = _QR | (q.flags & (0xF << 11)) | (q.flags & _RD) | (rcode & 0xF)
    if rcode == NOERROR:
        flags |= _AA
    question = q.qname + struct.pack("!HH", q.qtype, q.qclass)
    body = b"".join(struct.pack("!HHHIH", 0xC000 | _HEADER.size, r.rtype, C_IN, r.ttl,
                                len(r.rdata)) + r.rdata for r in answers)
    msg = _HEADER.pack(q.id, flags, 1, len(answers), 0, 0) + question + body
    if len(msg) > limit:
        msg = _HEADER.pack(q.id, flags | _TC, 1, 0, 0, 0) + question
    return msg


def _error_reply(data: bytes, rcode: int) -> bytes:
    """A header-only reply with RCODE to the query whose header starts DATA."""
    qid, flags = struct.unpack_from("!HH", data)
    return _HEADER.pack(qid, _QR | (flags & (0xF << 11)) | (flags & _RD) | rcode, 0, 0, 0, 0)


# ---- what a network answers ------------------------------------------------------

@dataclass(frozen=True)
class Host:
    """A container's addresses on one network."""

    ip: str
    ip6: str = ""


@dataclass(frozen=True)
class Zone:
    """A network's answers: names (lower case) to hosts; per asker (its IPv4 address
    on the network) the aliases of its links; reverse names to a container's name."""

    names: Mapping[str, tuple[Host, ...]] = field(default_factory=dict)
    links: Mapping[str, Mapping[str, tuple[Host, ...]]] = field(default_factory=dict)
    reverse: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, name: str, asker: str) -> tuple[Host, ...]:
        """The hosts NAME means to the container at ASKER (its links first)."""
        own = self.links.get(asker)
        if own and name in own:
            return own[name]
        return self.names.get(name, ())


def _reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


DNS_LABEL_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})")


def build_zone(network: str, members: Sequence[Member],
               endpoint: Callable[[str], Endpoint | None]) -> Zone:
    """NETWORK's zone from its MEMBERS (IPAM) and their endpoint records (ENDPOINT
    looks one up by container id), for link aliases."""
    names: dict[str, list[Host]] = {}
    reverse: dict[str, str] = {}
    hosts = {m.container_id: Host(m.ip, m.ip6) for m in members}
    by_name = {m.name: hosts[m.container_id] for m in members}

    def add(table: dict[str, list[Host]], name: str, host: Host) -> None:
        key = name.lower().rstrip(".")
        if key and host not in table.setdefault(key, []):
            table[key].append(host)

    for m in members:
        host = hosts[m.container_id]
        for name in (m.name, *m.aliases, m.container_id[:12]):
            add(names, name, host)
        # docker answers NAME.NETWORK; a network name that is no DNS label ("test 01",
        # non-ASCII, longer than 63) leaves the bare container name.
        target = f"{m.name}.{network}" if DNS_LABEL_RE.fullmatch(network) else m.name
        reverse[_reverse_name(m.ip)] = target
        if m.ip6:
            reverse[_reverse_name(m.ip6)] = target
    links: dict[str, dict[str, tuple[Host, ...]]] = {}
    for m in members:
        ep = endpoint(m.container_id)
        if ep is None:
            continue
        wanted = [(t, a) for t, a, _ip in ep.links]
        for iface in ep.attachment.interfaces:
            if iface.network == network:
                wanted += [(t, a or t) for t, _, a in (x.partition(":") for x in iface.links)]
        own: dict[str, list[Host]] = {}
        for target, alias in wanted:
            if target in by_name:
                add(own, alias, by_name[target])
        if own:
            links[m.ip] = {k: tuple(v) for k, v in own.items()}
    return Zone({k: tuple(v) for k, v in names.items()}, links, reverse)


def answer(zone: Zone | None, data: bytes, asker: str, limit: int = UDP_LIMIT) -> bytes | None:
    """The reply to the message DATA from ASKER, or None to drop it (malformed)."""
    try:
        q = parse_query(data)
    except (struct.error, IndexError, ValueError):  # parse_query checks bounds: belt and braces
        return None
    if q is None:
        return None  # malformed, or not a query: no reply at all
    if q.opcode != 0:
        return _error_reply(data, NOTIMP)
    name = q.name
    if zone is None or q.qclass != C_IN or not name:
        return build_response(q, REFUSED)
    hosts = zone.lookup(name, asker)
    if not hosts:
        target = zone.reverse.get(name)
        if target is None:
            return build_response(q, REFUSED)
        records = [Record(T_PTR, encode_name(target))] if q.qtype in (T_PTR, T_ANY) else []
        return build_response(q, NOERROR, records, limit)
    records = []
    if q.qtype in (T_A, T_ANY):
        records += [Record(T_A, ipaddress.IPv4Address(h.ip).packed) for h in hosts]
    if q.qtype in (T_AAAA, T_ANY):
        records += [Record(T_AAAA, ipaddress.IPv6Address(h.ip6).packed) for h in hosts if h.ip6]
    # A known name without records of that type: NOERROR with no answer (NODATA).
    return build_response(q, NOERROR, records, limit)


# ---- the server ---------------------------------------------------------------------

@dataclass
class _Listener:
    """One network's sockets and, once the loop has taken them, their servers."""

    network: str
    address: str
    udp: socket.socket
    tcp: socket.socket | None
    transport: asyncio.DatagramTransport | None = None
    server: asyncio.AbstractServer | None = None
    closed: bool = False


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, dns: EmbeddedDns, network: str) -> None:
        self.dns = dns
        self.network = network
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (the selector loop's datagram transport does not subclass DatagramTransport)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.dns.respond(self.network, data, str(addr[0]), UDP_LIMIT)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier reply (the asker went away): nothing to do.
        log.debug("embedded DNS for network %s: %s", self.network, exc)


class EmbeddedDns:
    """The DNS servers of the user networks, run by LOOP.

    serve, update and stop may be called from any thread (the network manager runs
    in worker threads, holding its lock): sockets are bound at once in the caller's
    thread, so the server answers from the moment serve returns (queries wait in the
    socket until the loop takes it over).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}
        self._zones: dict[str, Zone] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def serving(self, network: str) -> bool:
        """Whether NETWORK has a server (its sockets bound)."""
        return network in self._listeners

    def respond(self, network: str, data: bytes, asker: str, limit: int) -> bytes | None:
        """The reply to DATA from ASKER on NETWORK (None: drop it)."""
        return answer(self._zones.get(network), data, asker, limit)

    def update(self, network: str, zone: Zone) -> None:
        """Answer NETWORK's queries from ZONE from now on."""
        self._zones[network] = zone  # one reference swapped: readers see old or new

    def serve(self, network: str, bridge: str, address: str, zone: Zone) -> None:
        """Listen on ADDRESS:53 on BRIDGE for NETWORK (no-op if it already does).  A
        failure to bind is one warning naming the address, never an error."""
        self.update(network, zone)
        with self._lock:
            if network in self._listeners:
                return
            try:
                udp = _bound(socket.SOCK_DGRAM, bridge, address)
            except OSError as e:
                log.warning("embedded DNS for network %s: cannot listen on %s:%d/udp: %s "
                            "(containers still resolve names through /etc/hosts)",
                            network, address, PORT, e.strerror or e)
                return
            try:
                tcp: socket.socket | None = _bound(socket.SOCK_STREAM, bridge, address)
            except OSError as e:
                log.warning("embedded DNS for network %s: cannot listen on %s:%d/tcp: %s "
                            "(UDP only)", network, address, PORT, e.strerror or e)
                tcp = None
            listener = _Listener(network, address, udp, tcp)
            self._listeners[network] = listener
        self.loop.call_soon_threadsafe(self._activate, listener)

    def stop(self, network: str) -> None:
        """Stop NETWORK's server (the network is being removed)."""
        with self._lock:
            listener = self._listeners.pop(network, None)
        self._zones.pop(network, None)
        if listener is not None:
            self.loop.call_soon_threadsafe(self._close, listener)

    def close(self) -> None:
        """Stop every server (call in the loop's thread, at shutdown)."""
        with self._lock:
            listeners = list(self._listeners.values())
            self._listeners.clear()
        self._zones.clear()
        for listener in listeners:
            self._close(listener)

    # -- in the loop's thread --

    def _activate(self, listener: _Listener) -> None:
        task = self.loop.create_task(self._start(listener))
        self._tasks.add(task)  # the loop keeps only a weak reference to tasks
        task.add_done_callback(self._tasks.discard)

    async def _start(self, listener: _Listener) -> None:
        network = listener.network
        if listener.closed:
            return
        try:
            listener.transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _Udp(self, network), sock=listener.udp)
            if listener.tcp is not None and not listener.closed:

                async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    await self._tcp_client(network, r, w)

                listener.server = await asyncio.start_server(client, sock=listener.tcp)
        except OSError as e:
            log.warning("embedded DNS for network %s on %s:%d: %s", network, listener.address,
                        PORT, e)
        if listener.closed:  # stopped while we were starting
            self._close(listener)

    async def _tcp_client(self, network: str, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        asker = str(peer[0]) if peer else ""
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                reply = self.respond(network, data, asker, TCP_LIMIT)
                if reply is None:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            writer.close()

    def _close(self, listener: _Listener) -> None:
        listener.closed = True
        if listener.transport is not None:
            listener.transport.close()
        elif listener.udp.fileno() >= 0:
            listener.udp.close()
        if listener.server is not None:
            listener.server.close()
        elif listener.tcp is not None and listener.tcp.fileno() >= 0:
            listener.tcp.close()


def _bound(kind: int, bridge: str, address: str) -> socket.socket:
    """A non-blocking socket of KIND bound to ADDRESS:53 and to BRIDGE: only packets
    that arrive on BRIDGE reach it (a container of another network sending to this
    gateway address arrives on its own bridge and gets a port-unreachable)."""
    sock = socket.socket(socket.AF_INET, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bridge.encode())
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, PORT))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
    except BaseException:
        sock.close()
        raise
    return sock
