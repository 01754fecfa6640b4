"""Attached sessions: foreground `run`, `start -a`, `exec`: streams, ttys, signals."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import termios
import threading
import tty as ttymod
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .client import Client, demux


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    """Put our terminal in raw mode for a -t session, restoring it afterwards."""
    if not enabled or not os.isatty(0):
        yield
        return
    saved = termios.tcgetattr(0)
    ttymod.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int]:
    """(rows, columns) of our terminal."""
    size = os.get_terminal_size(1 if os.isatty(1) else 0)
    return size.lines, size.columns


DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str) -> bytes:
    """docker's --detach-keys: comma-separated single characters or ctrl-<key>, where
    <key> is a-z, @, [, \\, ], ^ or _ ."""
    out = bytearray()
    for part in spec.split(","):
        if len(part) == 1:
            out.append(ord(part))
            continue
        key = part[5:] if part.startswith("ctrl-") else ""
        if len(key) == 1 and ((key.isalpha() and key.islower()) or key in "@[\\]^_"):
            out.append(ord(key.upper() if key.isalpha() else key) & 0x1F)
            continue
        raise ValueError(f"Invalid escape keys ({spec}) provided")
    if not out:
        raise ValueError(f"Invalid escape keys ({spec}) provided")
    return bytes(out)


def check_detach_keys(spec: str | None, *, from_config: bool = True) -> str | None:
    """The detach keys of a session, checked, as docker's CLI picks them: SPEC (the
    --detach-keys flag), else `detachKeys` in docker's config.json ($DOCKER_CONFIG/
    config.json, by default ~/.docker/config.json; not read unless FROM_CONFIG: a
    detached command never attaches), else None for DEFAULT_DETACH_KEYS.  A bad
    sequence is a one-line usage error naming where it came from."""
    source = ""
    if spec is None:
        if not from_config:
            return None
        from . import dockerconfig

        config = dockerconfig.load()
        spec, source = config.detach_keys, f" in {config.path}"
        if spec is None:
            return None
    try:
        parse_detach_keys(spec)
    except ValueError as e:
        from .client import Usage

        raise Usage(f"{e}{source}") from None
    return spec


class EscapeProxy:
    """Looks for the detach sequence in what we send, as docker's term.EscapeProxy does:
    a partial match is held back, and sent on if the next key does not continue it."""

    def __init__(self, keys: bytes) -> None:
        self.keys, self.held, self.detached = keys, b"", False

    def feed(self, data: bytes) -> bytes:
        """What of DATA to send on; sets .detached when the whole sequence was typed."""
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                self.held = candidate
                if candidate == self.keys:
                    self.detached = True
                    return bytes(out)
                continue
            out += candidate
            self.held = b""
        return bytes(out)


def pump_stdin(sock: socket.socket, detach_keys: str | None = None, tty: bool = False
               ) -> tuple[threading.Thread, EscapeProxy | None]:
    """Copy our stdin into SOCK; at EOF close the sending side (docker's CloseWrite).
    In a terminal session typing the detach keys ends the session instead (the container
    goes on), as docker's CLI does."""
    proxy = EscapeProxy(parse_detach_keys(detach_keys or DEFAULT_DETACH_KEYS)) \
        if tty and os.isatty(0) else None

    def work() -> None:
        try:
            while True:
                ready, _, _ = select.select([0], [], [])
                if not ready:
                    continue
                data = os.read(0, 65536)
                if not data:
                    break
                if proxy is not None:
                    data = proxy.feed(data)
                    if proxy.detached:
                        if data:
                            sock.sendall(data)
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                sock.sendall(data)
        except OSError:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t, proxy


def stream(sock: socket.socket, *, tty: bool, stdin: bool,
           resize: Callable[[int, int], None] | None = None,
           detach_keys: str | None = None) -> bool:
    """Run an attached session on SOCK until the remote side ends it or we detach;
    whether we detached."""
    proxy = pump_stdin(sock, detach_keys, tty)[1] if stdin else None
    if tty and resize is not None and os.isatty(1):
        def on_winch(*_: Any) -> None:
            with contextlib.suppress(Exception):
                resize(*terminal_size())
        signal.signal(signal.SIGWINCH, on_winch)
        on_winch()
    with raw_terminal(tty and stdin):
        demux(sock, sys.stdout.buffer, sys.stderr.buffer, tty)
    sock.close()
    if proxy is not None and proxy.detached:
        # docker's message, on a line of its own once the terminal is cooked again
        sys.stderr.write("\r\n" if tty else "")
        sys.stderr.flush()
        return True
    return False


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2)
# Signals asking *us* to end: the first is the container's, a second one is ours.
TERMINATING = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def proxy_signals(client: Client, container: str, enabled: bool) -> Iterator[None]:
    """docker's --sig-proxy: signals we receive are sent to the container.

    We keep waiting for the container after forwarding, so that its own exit
    status is what we return.  A second SIGINT or SIGTERM makes us leave at
    once (status 128+signal) without waiting: the container, or the daemon,
    may not be answering.  Without the proxy (a -t session) SIGTERM ends us
    straight away, the terminal restored.
    """
    old: dict[int, Any] = {}
    received: list[int] = []

    def leave(signum: int) -> NoReturn:
        raise SystemExit(128 + signum)

    def forward(signum: int, _frame: Any) -> None:
        if signum in TERMINATING:
            if received:
                print(f"sdcontainer: {signal.Signals(signum).name} again: not waiting for "
                      f"container {container[:12]} any longer", file=sys.stderr)
                leave(signum)
            received.append(signum)

        def send() -> None:
            with contextlib.suppress(Exception):
                client.call("POST", f"/containers/{container}/kill",
                            {"signal": signal.Signals(signum).name})
        threading.Thread(target=send, daemon=True).start()

    def terminate(signum: int, _frame: Any) -> None:
        leave(signum)

    if enabled:
        for sig in FORWARDED:
            old[sig] = signal.signal(sig, forward)
    else:
        old[signal.SIGTERM] = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        for number, handler in old.items():
            signal.signal(number, handler)
