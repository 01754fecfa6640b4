"""Network namespaces as files, with nothing but the C library.

A namespace is made by a short-lived thread: it unshares its own network
namespace, bind-mounts /proc/thread-self/ns/net onto a file (which keeps the
namespace alive without any process in it), runs a setup callback inside it
and switches back before it ends.  That costs about a millisecond, where
pyroute2's NetNS forks a helper process per namespace.  Netlink sockets belong
to the namespace of the thread that opened them, so a callback that opens one
gets a handle that keeps working on the new namespace from any thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def _check(ret: int, what: str) -> None:
    if ret == 0:
        return
    err = ctypes.get_errno()
    hint = ""
    if err in (errno.EPERM, errno.ENOSYS):
        hint = " (not root, or blocked by seccomp?)"
    raise OSError(err, f"{what}: {os.strerror(err)}{hint}")


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    """setns(2) for the calling thread."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    """mount(2) without data."""
    _check(_libc.mount(source.encode(), target.encode(),
                       fstype.encode() if fstype else None, flags, None), f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> bool:
    """umount2(2); False when TARGET was not a mount point or does not exist."""
    if _libc.umount2(target.encode(), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run FN in a fresh thread and hand back its result or exception."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=body, name="sdc-netns")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def create_netns(path: Path, setup: Callable[[], T]) -> T:
    """Create a network namespace pinned at file PATH and run SETUP inside it.

    Returns what SETUP returns.  On any failure the file is unmounted and
    removed again.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def body() -> T:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            unshare(CLONE_NEWNET)
            try:
                mount("/proc/thread-self/ns/net", str(path), None, MS_BIND)
                return setup()
            finally:
                # The thread ends right after, but switch back anyway so
                # nothing else ever runs in a namespace it did not ask for.
                setns(home, CLONE_NEWNET)
        finally:
            os.close(home)

    try:
        return _in_thread(body)
    except BaseException:
        remove_netns(path)
        raise


def run_in_netns(path: str | Path, fn: Callable[[], T]) -> T:
    """Run FN in a short-lived thread that has joined the namespace at PATH."""
    def body() -> T:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
            try:
                return fn()
            finally:
                setns(home, CLONE_NEWNET)
        finally:
            os.close(target)
            os.close(home)

    return _in_thread(body)


def remove_netns(path: Path) -> None:
    """Unmount and delete a namespace file; fine if it is half made or gone."""
    umount(str(path))
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def is_mount_point(path: Path) -> bool:
    """Whether PATH is itself a mount point (per /proc/self/mountinfo)."""
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4].encode().decode("unicode_escape") == want:
                return True
    return False


def make_shared_dir(path: Path) -> None:
    """Make directory PATH a shared mount point, as `ip netns` does for /run/netns.

    Mount namespaces copied from ours after a namespace file was made (such
    as a container's) then receive the unmount when we remove the file, so a
    copy of the bind mount cannot keep a dead container's namespace alive.
    """
    path.mkdir(parents=True, exist_ok=True)
    if not is_mount_point(path):
        mount(str(path), str(path), None, MS_BIND | MS_REC)
    mount("none", str(path), None, MS_SHARED | MS_REC)
