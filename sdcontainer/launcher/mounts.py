"""The container's mounts, as data: built first, then checked, then applied.

A plan is a list of `MountOp`s whose targets are paths *inside* the rootfs.
`apply` resolves each target inside the rootfs (symlinks, absolute or not,
are followed as if the rootfs were /, so an image cannot point a mount
outside it), creates the mount point, and mounts.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from .. import syscalls as sc
from ..spec import LaunchSpec

NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC

# (name, major, minor): docker's default device nodes.
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0)]


@dataclass(frozen=True)
class MountOp:
    """One step of the plan: a mount, a device node, or a symlink inside the rootfs."""

    kind: str  # "mount" | "bind" | "device" | "symlink" | "mask" | "readonly"
    target: str  # absolute path inside the container
    source: str = ""
    fstype: str = ""
    flags: int = 0
    data: str = ""
    readonly: bool = False
    is_file: bool = False  # a bind mount of a file needs a file as its mount point
    major: int = 0
    minor: int = 0


def plan(spec: LaunchSpec) -> list[MountOp]:
    """The mounts for SPEC, in the order they must be made."""
    # A fresh tmpfs /dev with only the default nodes, whatever the image ships there;
    # --privileged gets a node for every host device too, as with docker (never a bind of
    # the host's /dev, which the steps below would then modify).
    nodes = host_devices() if spec.privileged else [
        MountOp("device", f"/dev/{n}", major=ma, minor=mi) for n, ma, mi in DEVICES]
    dev = [MountOp("mount", "/dev", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME,
                   "mode=755,size=65536k"), *nodes]
    ops = [
        MountOp("mount", "/proc", "proc", "proc", NOSUID_NODEV_NOEXEC),
        *dev,
        *[MountOp("device", d["path"], fstype=d["type"], major=d["major"], minor=d["minor"],
                  data=str(d.get("mode", 0o666))) for d in spec.devices],
        MountOp("mount", "/dev/pts", "devpts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        MountOp("symlink", "/dev/ptmx", "pts/ptmx"),
        MountOp("symlink", "/dev/fd", "/proc/self/fd"),
        MountOp("symlink", "/dev/stdin", "/proc/self/fd/0"),
        MountOp("symlink", "/dev/stdout", "/proc/self/fd/1"),
        MountOp("symlink", "/dev/stderr", "/proc/self/fd/2"),
        MountOp("mount", "/dev/shm", "shm", "tmpfs", NOSUID_NODEV_NOEXEC,
                "mode=1777,size=65536k"),
        MountOp("mount", "/dev/mqueue", "mqueue", "mqueue", NOSUID_NODEV_NOEXEC),
        MountOp("mount", "/sys", "sysfs", "sysfs",
                NOSUID_NODEV_NOEXEC | (0 if spec.privileged else sc.MS_RDONLY)),
        *[MountOp("mask", p) for p in spec.masked_paths],
        *[MountOp("readonly", p) for p in spec.readonly_paths],
    ]
    for target, source in sorted(spec.etc_files.items()):
        ops.append(MountOp("bind", target, source, is_file=True))
    for m in spec.mounts:
        if m.type == "tmpfs":
            ops.append(MountOp("mount", m.target, "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
                               m.options or "mode=1777", readonly=m.readonly))
        else:
            ops.append(MountOp("bind", m.target, m.source, readonly=m.readonly,
                               is_file=not os.path.isdir(m.source)))
    return ops


def host_devices() -> list[MountOp]:
    """A device op for each character and block device under the host's /dev."""
    ops = []
    for top, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in ("pts", "shm", "mqueue")]
        for f in files:
            path = os.path.join(top, f)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if path in ("/dev/ptmx", "/dev/console"):
                    continue
                ops.append(MountOp("device", path, fstype="b" if stat.S_ISBLK(st.st_mode)
                                   else "c", major=os.major(st.st_rdev),
                                   minor=os.minor(st.st_rdev), data=str(stat.S_IMODE(st.st_mode))))
    return ops


def resolve_in_root(root: str, path: str) -> str:
    """PATH inside ROOT, with every symlink on the way resolved as if ROOT were /.

    Missing components are allowed (they will be created); the result always
    lies under ROOT.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(40, f"too many levels of symbolic links resolving {path}")
            link = os.readlink(candidate)
            if link.startswith("/"):
                resolved = []
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _make_mountpoint(path: str, is_file: bool) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if is_file:
        if not os.path.lexists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
    else:
        os.makedirs(path, mode=0o755, exist_ok=True)


def open_devnull() -> int:
    """The host's /dev/null, checked to be char 1:3, to bind over masked files: a path
    an image controls could be swapped for something else (CVE-2025-31133)."""
    fd = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise OSError(1, "/dev/null is not the null device")
    return fd


def apply(root: str, ops: list[MountOp]) -> None:
    """Carry out OPS under ROOT (the mounted rootfs, before pivot_root)."""
    devnull = -1
    for op in ops:
        if op.kind in ("mask", "readonly"):
            target = os.path.join(root, op.target.lstrip("/"))
            if not os.path.lexists(target) or os.path.islink(target):
                continue
            if op.kind == "readonly":
                sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
                sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY
                         | NOSUID_NODEV_NOEXEC)
            elif os.path.isdir(target):
                sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY | NOSUID_NODEV_NOEXEC,
                         "size=0,mode=0555")
            else:
                if devnull < 0:
                    devnull = open_devnull()
                sc.mount(f"/proc/self/fd/{devnull}", target, None, sc.MS_BIND)
            continue
        target = resolve_in_root(root, op.target)
        if op.kind == "symlink":
            if os.path.lexists(target):
                os.unlink(target)
            os.symlink(op.source, target)
        elif op.kind == "device":
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if os.path.lexists(target):
                os.unlink(target)
            kind = stat.S_IFBLK if op.fstype == "b" else stat.S_IFCHR
            mode = int(op.data) if op.data else 0o666
            os.mknod(target, mode | kind, os.makedev(op.major, op.minor))
            os.chmod(target, mode)
        elif op.kind == "mount":
            _make_mountpoint(target, False)
            sc.mount(op.source, target, op.fstype, op.flags, op.data or None)
            if op.readonly:
                sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | op.flags)
        else:  # bind
            _make_mountpoint(target, op.is_file)
            sc.mount(op.source, target, None, sc.MS_BIND | sc.MS_REC)
            if op.readonly:
                sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)
    if devnull >= 0:
        os.close(devnull)
