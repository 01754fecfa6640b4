"""Where the API listens: the unix socket, and TCP only behind TLS.

TCP carries root-equivalent power, so it is served only with TLS (1.2 or later)
and, with --tlsverify, only to clients whose certificate chains to the
configured CA: the handshake fails before any request is read.  A plain HTTP
request to the TLS port gets Go's 400 answer, as docker's daemon gives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import ssl
import urllib.parse
from typing import Any

from ..errors import InvalidArgument, SdcError
from .tlsconf import TLSSettings, server_context  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
PLAIN_HTTP_ANSWER = (b"HTTP/1.0 400 Bad Request\r\n\r\n"
                     b"Client sent an HTTP request to an HTTPS server.\n")


def parse_tcp(host: str) -> tuple[str, int]:
    """tcp://ADDR:PORT (docker's default port for TLS is 2376)."""
    u = urllib.parse.urlsplit(host)
    if not u.hostname:
        raise InvalidArgument(f"invalid listen address {host!r}")
    return u.hostname, u.port or 2376


async def listen_unix(handle: Any, path: str, group: str) -> asyncio.AbstractServer:
    """The API socket, root:GROUP 0660 from the moment it exists (no wider window).

    A path-bound socket, never an abstract one: abstract sockets ignore file
    permissions and are reachable from any process in the network namespace
    (CVE-2020-15257).
    """
    if path.startswith("@") or not path.startswith("/"):
        raise InvalidArgument(f"the API socket must be an absolute path, not {path!r}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    old = os.umask(0o117)
    try:
        srv = await asyncio.start_unix_server(handle, path, limit=1 << 20)
    finally:
        os.umask(old)
    try:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    except KeyError:
        log.info("group %s does not exist; %s is root-only", group, path)
    return srv


class TCPListener:
    """Accepts on ADDR:PORT; each connection is sniffed, then served over TLS."""

    def __init__(self, handle: Any, addr: str, port: int, ctx: ssl.SSLContext | None) -> None:
        self.handle = handle
        self.ctx = ctx
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        try:
            self.sock = socket.create_server((addr, port), family=family, backlog=128)
        except OSError as e:
            raise SdcError(f"cannot listen on {addr}:{port}: {e.strerror}") from None
        self.sock.setblocking(False)
        self._task: asyncio.Task[None] | None = None
        self._conns: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Begin accepting in the running loop."""
        self._task = asyncio.ensure_future(self._accept())

    def close(self) -> None:
        """Stop accepting; connections in progress end with the loop."""
        if self._task is not None:
            self._task.cancel()
        self.sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self.sock)
            task = asyncio.ensure_future(self._serve(conn))
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            first = await asyncio.wait_for(peek(conn), HANDSHAKE_TIMEOUT)
            if self.ctx is not None and first and first[0] != 0x16:
                # Not a TLS handshake record: someone spoke plain HTTP to the TLS port.
                await loop.sock_sendall(conn, PLAIN_HTTP_ANSWER)
                conn.shutdown(socket.SHUT_WR)
                # Read what the client sent before closing: closing with unread bytes
                # resets the connection, and the client might never see the answer.
                with contextlib.suppress(TimeoutError, OSError):
                    async with asyncio.timeout(1):
                        while await loop.sock_recv(conn, 65536):
                            pass
                conn.close()
                return
            app = conn
            if self.ctx is not None:
                pump = TLSPump(conn, self.ctx)
                await asyncio.wait_for(pump.handshake(), HANDSHAKE_TIMEOUT)
                app = pump.start()
            reader = asyncio.StreamReader(limit=1 << 20)
            protocol = asyncio.StreamReaderProtocol(reader, self.handle)
            await loop.connect_accepted_socket(lambda: protocol, app)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            # A refused client certificate ends here, before any request is read.
            log.info("TCP connection refused: %s", e)
            conn.close()


class TLSPump:
    """TLS for one connection, done with ssl's memory BIOs in the event loop.

    asyncio's own TLS transport closes the whole connection when the peer sends
    close_notify, but docker's clients half-close a hijacked attach that way
    (CloseWrite) and then read the container's output.  So the server speaks
    plain bytes to one end of a socketpair, where half-close works, and this
    pump carries them to and from the TLS socket.
    """

    def __init__(self, raw: socket.socket, ctx: ssl.SSLContext) -> None:
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    async def _flush(self) -> None:
        async with self.send_lock:
            data = self.outgoing.read()
            if data:
                await asyncio.get_running_loop().sock_sendall(self.raw, data)

    async def _fill(self) -> bool:
        data = await asyncio.get_running_loop().sock_recv(self.raw, 65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def handshake(self) -> None:
        """Complete the handshake (client certificate checked here) or raise."""
        while True:
            try:
                self.tls.do_handshake()
                await self._flush()
                return
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ConnectionError("client left during the TLS handshake") from None
            except ssl.SSLError:
                await self._flush()  # the alert tells the client why
                raise

    def start(self) -> socket.socket:
        """Start pumping; the plain socket the HTTP server should use."""
        inner, outer = socket.socketpair()
        inner.setblocking(False)
        outer.setblocking(False)
        for coro in (self._down(outer), self._up(outer)):
            task = asyncio.ensure_future(coro)
            self.tasks.add(task)
            task.add_done_callback(self._done(outer))
        return inner

    def _done(self, outer: socket.socket) -> Any:
        def done(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            if not self.tasks:
                outer.close()
                self.raw.close()
        return done

    async def _down(self, outer: socket.socket) -> None:
        """Client to server: decrypt until the client's close_notify or EOF."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, ssl.SSLError):
            while True:
                try:
                    data = self.tls.read(65536)
                except ssl.SSLWantReadError:
                    await self._flush()  # e.g. TLS 1.3 key updates
                    if not await self._fill():
                        break
                    continue
                except ssl.SSLZeroReturnError:
                    break
                if not data:
                    break
                await loop.sock_sendall(outer, data)
        with contextlib.suppress(OSError):
            outer.shutdown(socket.SHUT_WR)

    async def _up(self, outer: socket.socket) -> None:
        """Server to client: encrypt until the server closes its side."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := await loop.sock_recv(outer, 65536):
                self.tls.write(data)
                await self._flush()
            with contextlib.suppress(ssl.SSLWantReadError):
                self.tls.unwrap()
            await self._flush()
        with contextlib.suppress(OSError):
            self.raw.shutdown(socket.SHUT_WR)


async def peek(conn: socket.socket) -> bytes:
    """The first byte the client sent, left in the socket for the TLS layer."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(conn.fileno())
    return conn.recv(1, socket.MSG_PEEK)
