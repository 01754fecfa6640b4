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


def pump_stdin(sock: socket.socket) -> threading.Thread:
    """Copy our stdin into SOCK; at EOF close the sending side (docker's CloseWrite)."""
    def work() -> None:
        try:
            while True:
                ready, _, _ = select.select([0], [], [])
                if not ready:
                    continue
                data = os.read(0, 65536)
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


def stream(sock: socket.socket, *, tty: bool, stdin: bool,
           resize: Callable[[int, int], None] | None = None) -> None:
    """Run an attached session on SOCK until the remote side ends it."""
    if stdin:
        pump_stdin(sock)
    if tty and resize is not None and os.isatty(1):
        def on_winch(*_: Any) -> None:
            with contextlib.suppress(Exception):
                resize(*terminal_size())
        signal.signal(signal.SIGWINCH, on_winch)
        on_winch()
    with raw_terminal(tty and stdin):
        demux(sock, sys.stdout.buffer, sys.stderr.buffer, tty)
    sock.close()


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
