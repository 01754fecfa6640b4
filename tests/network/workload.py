"""Workloads and clients for the network tests: busybox httpd and wget, a UDP echo.

Everything runs through nsenter into a container's network namespace, or in
the box's own namespace (the "host" side).  Addresses are only ever those the
tests assign inside the box.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSYBOX = "/bin/busybox"

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
"""

UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(2048)[0].decode())
"""


def in_ns(netns: str | None, argv: list[str]) -> list[str]:
    """ARGV run in NETNS (None: the box's own namespace)."""
    return argv if netns is None else ["nsenter", f"--net={netns}", *argv]


@contextmanager
def httpd(netns: str, docroot: Path, port: int = 80, text: str = "hello") -> Iterator[None]:
    """busybox httpd serving TEXT as index.html in NETNS while the block runs."""
    docroot.mkdir(parents=True, exist_ok=True)
    (docroot / "index.html").write_text(text)
    proc = subprocess.Popen(in_ns(netns, [BUSYBOX, "httpd", "-f", "-p", str(port),
                                          "-h", str(docroot)]))
    try:
        wait_listening(netns, port)
        yield
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def udp_echo(netns: str, port: int) -> Iterator[None]:
    """A UDP echo server on PORT in NETNS while the block runs."""
    proc = subprocess.Popen(in_ns(netns, [sys.executable, "-c", UDP_ECHO, str(port)]))
    try:
        wait_listening(netns, port, "udp")
        yield
    finally:
        proc.kill()
        proc.wait()


def wait_listening(netns: str, port: int, proto: str = "tcp") -> None:
    """Poll until something in NETNS listens on PORT (tcp or udp)."""
    flag = "-Htln" if proto == "tcp" else "-Huln"
    for _ in range(250):
        out = subprocess.run(in_ns(netns, ["ss", flag, f"sport = :{port}"]),
                             capture_output=True, text=True, check=False).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {proto} port {port} in {netns}")


def wget(netns: str | None, url: str, timeout: int = 2) -> str | None:
    """The body at URL fetched from NETNS, or None when it cannot be reached."""
    # busybox 1.35's wget -T segfaults: timeout(1) bounds the wait instead.
    proc = subprocess.run(in_ns(netns, ["timeout", str(timeout), BUSYBOX, "wget", "-qO-", url]),
                          capture_output=True, text=True, check=False, timeout=timeout + 5)
    return proc.stdout if proc.returncode == 0 else None


def udp_ask(netns: str | None, ip: str, port: int) -> str | None:
    """The echo answer of a UDP server at IP:PORT asked from NETNS, or None."""
    proc = subprocess.run(in_ns(netns, [sys.executable, "-c", UDP_ASK, ip, str(port)]),
                          capture_output=True, text=True, check=False, timeout=10)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ip_json(netns: str | None, *args: str) -> str:
    """`ip ARGS` in NETNS (output as text)."""
    return subprocess.run(in_ns(netns, ["ip", *args]), capture_output=True, text=True,
                          check=True).stdout
