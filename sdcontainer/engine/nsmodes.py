"""Namespaces given by path (podman's `ns:/PATH`): which file, and is it one.

A container may join a network, IPC or UTS namespace that something else holds open
by a bind mount of its nsfs file (a CRI pod's sandbox, `unshare --net=/run/x/net`).
The path is checked when the container is created and again when it starts: it may
have been unmounted in between, and the start must then fail before anything is made.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable

from ..errors import Conflict, InvalidArgument
from .records import Container

PREFIX = "ns:"
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3): the CLONE_NEW* flag of an nsfs file
KINDS = {"network": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000, "pid": 0x20000000}
PROC_NAMES = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid"}


def path_of(mode: str) -> str:
    """The namespace file a mode names ("ns:/run/x/net" -> "/run/x/net"), else ""."""
    return mode[len(PREFIX):] if mode.startswith(PREFIX) else ""


def check(mode: str, kind: str) -> str:
    """Raise InvalidArgument unless MODE's path ("ns:/PATH") is an absolute path to a
    namespace file of KIND (network, ipc, uts, pid); return the path."""
    path = path_of(mode)
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid {kind} namespace path {path!r}: must be absolute "
                              "(ns:/PATH)")
    try:
        # Every nsfs file lives on the one nsfs superblock: anything else (a device,
        # a FIFO) is refused before it is opened.
        if os.stat(path).st_dev != os.stat("/proc/self/ns/net").st_dev:
            raise InvalidArgument(f"invalid {kind} namespace path {path}: not a "
                                  "namespace file")
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise InvalidArgument(f"invalid {kind} namespace path {path}: "
                              f"{e.strerror}") from None
    try:
        nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as e:
        if e.errno not in (errno.ENOTTY, errno.EINVAL):
            raise InvalidArgument(f"invalid {kind} namespace path {path}: "
                                  f"{e.strerror}") from None
        nstype = 0
    finally:
        os.close(fd)
    if nstype != KINDS[kind]:
        raise InvalidArgument(f"invalid {kind} namespace path {path}: not a {kind} "
                              "namespace")
    return path


def validate(mode: str, kind: str, get: Callable[[str], Container]) -> None:
    """At create: a path must name a namespace of KIND, container:NAME an existing
    container ("", private, shareable and host are the caller's to check)."""
    if mode.startswith(PREFIX):
        check(mode, kind)
    elif mode.startswith("container:"):
        get(mode.split(":", 1)[1])


def setting(mode: str, kind: str, get: Callable[[str], Container]) -> str:
    """At start: the launcher's setting for namespace KIND under MODE: "new", "host",
    or the path of the namespace to join (a path checked again, a container running)."""
    if mode == "host":
        return "host"
    if mode.startswith(PREFIX):
        return check(mode, kind)
    if mode.startswith("container:"):
        other = get(mode.split(":", 1)[1])
        if not other.running:
            raise Conflict(f"cannot join the {kind} namespace of {other.name}: it is not "
                           "running")
        return f"/proc/{other.state.pid}/ns/{PROC_NAMES[kind]}"
    return "new"
