"""Host port reservations: hold a socket on every published host port.

Before we DNAT a host port we bind it, as docker's proxy does: the bind
fails if any process already uses the port (so the run fails cleanly with a
Conflict instead of silently stealing its traffic), and while we hold the
socket no process can take the port behind our back.  TCP sockets listen
with SO_REUSEADDR, like a server's, so a port in TIME_WAIT is not "in use".
"""

from __future__ import annotations

import errno
import socket

from sdcontainer.errors import Conflict, InvalidArgument

from .model import PortMapping


def reserve(mappings: list[PortMapping]) -> tuple[list[PortMapping], list[socket.socket]]:
    """Bind every (single-port) mapping; resolve host port 0 to a free port.

    All or nothing: on failure every socket bound so far is closed.
    """
    held: list[socket.socket] = []
    resolved: list[PortMapping] = []
    try:
        for m in mappings:
            sock = _bind(m)
            held.append(sock)
            port = sock.getsockname()[1]
            resolved.append(PortMapping(m.host_ip, port, m.container_port, m.proto))
    except BaseException:
        release(held)
        raise
    return resolved, held


def _bind(m: PortMapping) -> socket.socket:
    kind = socket.SOCK_STREAM if m.proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if m.proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((m.host_ip or "0.0.0.0", m.host_port))
        if m.proto == "tcp":
            sock.listen(1)
    except OSError as e:
        sock.close()
        where = f"{m.host_ip or '0.0.0.0'}:{m.host_port}/{m.proto}"
        if e.errno == errno.EADDRINUSE:
            raise Conflict(f"host port {where} is already in use") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise InvalidArgument(f"cannot publish on {where}: not a host address") from None
        raise InvalidArgument(f"cannot publish on {where}: {e.strerror}") from None
    return sock


def with_exposed(publish: list[PortMapping], exposed: list[str]) -> list[PortMapping]:
    """PUBLISH and, as docker's -P (PublishAllPorts) adds them, every EXPOSED port
    ("80/tcp", the image's and --expose's) that no mapping of PUBLISH covers, on a free
    host port of every address.  SCTP ports are left out: we publish TCP and UDP."""
    covered = {(p.container_port + i, p.proto) for p in publish for i in range(p.count)}
    extra = []
    for key in exposed:
        number, _, proto = key.partition("/")
        port, proto = int(number), proto or "tcp"
        if proto in ("tcp", "udp") and (port, proto) not in covered:
            covered.add((port, proto))
            extra.append(PortMapping("", 0, port, proto))
    return [*publish, *extra]


def release(socks: list[socket.socket]) -> None:
    """Close reservation sockets."""
    for s in socks:
        s.close()
