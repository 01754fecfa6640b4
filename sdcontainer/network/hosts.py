"""The per-container /etc/hosts, /etc/resolv.conf and /etc/hostname.

Name resolution between containers is done with hosts files first; on user
networks an embedded DNS server on the gateway (dns.py) answers programs that
ask DNS directly: see docs/networking.md for why both.  The files
are bind-mounted into containers one by one, so an update must keep the
inode: hosts files of running containers are rewritten in place, never
replaced by rename.

They live in the container's directory on the state disk, as docker keeps
them: a container may write its own /etc/hosts (the bind is read-write), and
what it writes must count against the disk its upper layer is on, never
against /run, which systemd needs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The stub listener of systemd-resolved; behind it, this file lists the real upstreams.
RESOLVED_STUB = "127.0.0.53"
RESOLVED_UPSTREAMS = Path("/run/systemd/resolve/resolv.conf")

LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


@dataclass(frozen=True)
class HostEntry:
    """One line: an address and its names."""

    ip: str
    names: tuple[str, ...]

    def line(self) -> str:
        """The hosts(5) line for this entry."""
        return f"{self.ip}\t{' '.join(self.names)}\n"


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n))


def render_hosts(*, own: list[HostEntry], add_hosts: list[tuple[str, str]],
                 links: list[tuple[str, str, str]], members: list[HostEntry],
                 base: str = LOCALHOST) -> str:
    """A hosts file: localhost, --add-host, links, network members, then itself.

    links are (target name, alias, ip), written "ip alias name" as docker does.
    """
    parts = [base if base.endswith("\n") or not base else base + "\n"]
    parts += [HostEntry(ip, (host,)).line() for host, ip in add_hosts]
    parts += [HostEntry(ip, _unique((alias, name))).line() for name, alias, ip in links]
    parts += [HostEntry(m.ip, _unique(m.names)).line() for m in members]
    parts += [HostEntry(o.ip, _unique(o.names)).line() for o in own]
    return "".join(parts)


def host_resolv_conf(path: Path) -> str:
    """The host's resolv.conf text; past systemd-resolved's stub to its upstreams."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    servers = [ln.split()[1] for ln in text.splitlines()
               if ln.startswith("nameserver") and len(ln.split()) > 1]
    if servers == [RESOLVED_STUB]:
        try:
            return RESOLVED_UPSTREAMS.read_text()
        except FileNotFoundError:
            pass
    return text


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def render_resolv(host_text: str, *, dns: list[str], search: list[str], options: list[str],
                  fallback: Iterable[str], keep_loopback: bool, embedded: str = "") -> str:
    """A container's resolv.conf derived from the host's.

    Loopback nameservers are dropped unless the container shares the host's
    namespace (KEEP_LOOPBACK): inside its own namespace 127.0.0.x is the
    container itself.  If none remain, FALLBACK (from the configuration) is
    used.  --dns, --dns-search and --dns-option replace the host's values.
    EMBEDDED, the embedded DNS server of a user network (its gateway), comes
    first, before --dns servers too (docker's server forwards to those).
    """
    servers: list[str] = []
    host_search: list[str] = []
    host_options: list[str] = []
    for line in host_text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            if keep_loopback or not _is_loopback(words[1]):
                servers.append(words[1])
        elif words[0] in ("search", "domain"):
            host_search = words[1:]
        elif words[0] == "options":
            host_options += words[1:]
    if dns:
        servers = list(dns)
    elif not servers:
        servers = list(fallback)
    if embedded:
        servers = [embedded, *(s for s in servers if s != embedded)]
    out = [f"nameserver {s}\n" for s in servers]
    if search or host_search:
        out.append(f"search {' '.join(search or host_search)}\n")
    if options or host_options:
        out.append(f"options {' '.join(options or host_options)}\n")
    return "".join(out)


def write_new(path: Path, text: str) -> None:
    """Create or replace PATH before the container starts (it is not mounted yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_at_start(fd: int, data: bytes) -> None:
    """Write DATA over the start of FD, then cut FD to its length."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)
    os.ftruncate(fd, len(data))


def rewrite_in_place(path: Path, text: str) -> bool:
    """Overwrite PATH keeping its inode (it is bind-mounted); False if it is gone.

    The new text is written over the old before the file is cut to length,
    never truncated first: on a full disk (ENOSPC) the old text is put back
    (its blocks are still there) and the error raised, so a failed update
    leaves the previous file, not an empty or torn one.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        # The container may have made it huge (the bind is read-write); a
        # hosts file we would keep is small, so read no more than we restore.
        old = os.pread(fd, 1 << 20, 0)
        try:
            _write_at_start(fd, text.encode())
        except OSError:
            with contextlib.suppress(OSError):
                _write_at_start(fd, old)
            raise
    finally:
        os.close(fd)
    return True
