"""A pod's namespaces, held without a pause process: bind mounts of nsfs files
under /run/sdcontainer/cri/pods/ID/{net,ipc,uts}, as `ip netns` and CRI-O's pinns
hold them.  The daemon has threads, so it never unshares itself: util-linux
`unshare` does it in a child, which sets the hostname and brings lo up (iproute2)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
from pathlib import Path

from ..errors import InvalidArgument, SdcError
from ..runtime import syscalls
from ..util.run import run

KINDS = ("net", "ipc", "uts")
# RFC 1123 host names, as kubelet makes them (the pod's name or spec.hostname).
HOSTNAME_RE = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})")


def check_hostname(hostname: str) -> None:
    """Refuse a hostname the kernel or a shell would take for something else."""
    if hostname and not HOSTNAME_RE.fullmatch(hostname):
        raise InvalidArgument(f"invalid pod hostname {hostname!r}")


def _make(pin_dir: Path, kinds: tuple[str, ...], hostname: str) -> None:
    pin_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = ["unshare"]
    for kind in kinds:
        (pin_dir / kind).touch(mode=0o600)
        argv.append(f"--{kind}={pin_dir / kind}")
    script = []
    if "uts" in kinds and hostname:
        # The writer's UTS namespace's name: no hostname(1) needed (not on every distro).
        script.append('printf %s "$1" > /proc/sys/kernel/hostname')
    if "net" in kinds:
        script.append("ip link set lo up")
    argv += ["/bin/sh", "-ec", "; ".join(script) or "true", "sh", hostname]
    run(argv, timeout=30)


def _is_pinned(path: Path) -> bool:
    """Whether PATH holds a namespace (an nsfs mount), not the empty file under it."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def _remove(pin_dir: Path) -> None:
    for kind in KINDS:
        path = pin_dir / kind
        while _is_pinned(path):
            try:
                syscalls.umount(str(path), syscalls.MNT_DETACH)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise SdcError(f"cannot unpin {path}: {e.strerror}") from None
                break
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with contextlib.suppress(FileNotFoundError):
        pin_dir.rmdir()


async def pin(pin_dir: Path, kinds: tuple[str, ...], hostname: str) -> None:
    """New namespaces of KINDS pinned under PIN_DIR, with HOSTNAME and lo up; nothing
    stays behind when it fails."""
    check_hostname(hostname)
    try:
        await asyncio.to_thread(_make, pin_dir, kinds, hostname)
    except BaseException:
        await asyncio.to_thread(_remove, pin_dir)
        raise


async def unpin(pin_dir: Path) -> None:
    """Let go of the namespaces under PIN_DIR (they end with their last process) and
    remove the files; already gone is fine."""
    await asyncio.to_thread(_remove, pin_dir)


def pinned(pin_dir: Path, kinds: tuple[str, ...]) -> bool:
    """Whether every namespace of KINDS is still held (a reboot drops them)."""
    return all(_is_pinned(pin_dir / kind) for kind in kinds)
