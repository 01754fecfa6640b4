"""The container's mounts, as data: built first, then checked, then applied.

A plan is a list of `MountOp`s whose targets are paths *inside* the rootfs.
`apply` opens each target with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
(symlinks, absolute or not, are followed as if the rootfs were /, so an image
cannot point a mount outside it), creating missing directories through the
fds it opened, checks where the target really is, and mounts onto that fd,
never onto a path resolved a second time: a target swapped for a symlink
between the check and the mount (runc CVE-2021-30465) changes nothing.

A target that resolves under /proc, /sys or /dev is refused unless the
launcher itself put it there: an image whose /data links to /proc/sys/kernel
would otherwise turn `-v DIR:/data` into a bind over kernel settings, and a
bind over /proc/self/attr is the CVE-2019-16884 pattern.

A bind's propagation is docker's (rprivate unless asked): the copy of its source
gets it before it is attached.  `share_sources` runs before the launcher makes /
a slave: it checks, as docker does, that a source asked to share ((r)shared) lies
on a shared mount and one asked to receive ((r)slave) on a shared or slave mount,
and copies the (r)shared ones then, while they still are peers of the host's
mounts: copied later, they could only receive.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from dataclasses import dataclass, replace

from ...model.spec import LaunchSpec
from .. import syscalls as sc
from .sandbox_errors import ExecFailure

NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC

# A bind's propagation (MountSpec.propagation) as mount flags.
PROPAGATION = {"rprivate": sc.MS_PRIVATE | sc.MS_REC, "private": sc.MS_PRIVATE,
               "rslave": sc.MS_SLAVE | sc.MS_REC, "slave": sc.MS_SLAVE,
               "rshared": sc.MS_SHARED | sc.MS_REC, "shared": sc.MS_SHARED}

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
    # The launcher's own mounts and nodes may land under /proc, /sys and /dev;
    # volumes, tmpfs and the /etc files may not.
    special_ok: bool = False
    copy_up: bool = False  # a volume: copy the image's files at the target into it if empty
    propagation: str = ""  # a bind: a key of PROPAGATION
    tree: int = -1  # a bind: the copy of SOURCE share_sources took (an open_tree fd)


def plan(spec: LaunchSpec) -> list[MountOp]:
    """The mounts for SPEC, in the order they must be made."""
    # A fresh tmpfs /dev with only the default nodes, whatever the image ships there;
    # --privileged gets a node for every host device too, as with docker (never a bind of
    # the host's /dev, which the steps below would then modify).
    nodes = host_devices() if spec.privileged else [
        MountOp("device", f"/dev/{n}", major=ma, minor=mi, special_ok=True)
        for n, ma, mi in DEVICES]
    dev = [MountOp("mount", "/dev", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME,
                   "mode=755,size=65536k", special_ok=True), *nodes]
    ops = [
        MountOp("mount", "/proc", "proc", "proc", NOSUID_NODEV_NOEXEC, special_ok=True),
        *dev,
        *[MountOp("device", d.path, d.host, fstype=d.type, major=d.major,
                  minor=d.minor, special_ok=True) for d in spec.devices],
        MountOp("mount", "/dev/pts", "devpts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5", special_ok=True),
        MountOp("symlink", "/dev/ptmx", "pts/ptmx", special_ok=True),
        MountOp("symlink", "/dev/fd", "/proc/self/fd", special_ok=True),
        MountOp("symlink", "/dev/stdin", "/proc/self/fd/0", special_ok=True),
        MountOp("symlink", "/dev/stdout", "/proc/self/fd/1", special_ok=True),
        MountOp("symlink", "/dev/stderr", "/proc/self/fd/2", special_ok=True),
        MountOp("mount", "/dev/shm", "shm", "tmpfs", NOSUID_NODEV_NOEXEC,
                f"mode=1777,size={spec.shm_size or 65536 * 1024}", special_ok=True),
        MountOp("mount", "/dev/mqueue", "mqueue", "mqueue", NOSUID_NODEV_NOEXEC,
                special_ok=True),
        MountOp("mount", "/sys", "sysfs", "sysfs",
                NOSUID_NODEV_NOEXEC | (0 if spec.privileged else sc.MS_RDONLY), special_ok=True),
        *[MountOp("mask", p, special_ok=True) for p in spec.masked_paths],
        *[MountOp("readonly", p, special_ok=True) for p in spec.readonly_paths],
    ]
    for target, source in sorted(spec.etc_files.items()):
        ops.append(MountOp("bind", target, source, is_file=True, propagation="rprivate"))
    for m in spec.mounts:
        if m.type == "tmpfs":
            ops.append(MountOp("mount", m.target, "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
                               m.options or "mode=1777", readonly=m.readonly))
        else:
            ops.append(MountOp("bind", m.target, m.source, readonly=m.readonly,
                               is_file=not os.path.isdir(m.source),
                               copy_up=m.type == "volume" and not m.nocopy,
                               propagation=m.propagation or "rprivate"))
    return ops


def share_sources(ops: list[MountOp]) -> list[MountOp]:
    """OPS, the binds asked to share or receive checked against their source's mount,
    and the (r)shared ones with the copy of their source taken now.

    Call before / is made a slave: docker's checks and messages (a source that is not
    shared cannot share, nor one neither shared nor slave receive)."""
    out: list[MountOp] = []
    try:
        for op in ops:
            if op.kind == "bind" and op.propagation in ("rshared", "shared", "rslave", "slave"):
                share = op.propagation.endswith("shared")
                mountpoint, fields = source_mount(op.source)
                if "shared" not in fields and (share or "master" not in fields):
                    raise ExecFailure(125, f"path {op.source} is mounted on {mountpoint} but "
                                      f"it is not a {'shared' if share else 'shared or slave'} "
                                      "mount")
                if share:
                    op = replace(op, tree=sc.clone_tree(op.source))
            out.append(op)
    except BaseException:
        close_trees(out)
        raise
    return out


def close_trees(ops: list[MountOp]) -> None:
    """Close the source copies of OPS that were never attached."""
    for op in ops:
        if op.tree >= 0:
            os.close(op.tree)


def source_mount(path: str) -> tuple[str, set[str]]:
    """The mount point of the mount PATH lies on (in our mount namespace), and the kinds
    of that mount's propagation fields in /proc/self/mountinfo ("shared", "master", ...).

    The mount is found by the id the kernel gives the opened PATH, not by comparing
    paths: a mount stacked over another, or a symlink in PATH, cannot mislead it."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
            mnt_id = next(line.split()[1] for line in f if line.startswith("mnt_id:"))
    finally:
        os.close(fd)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            if fields[0] == mnt_id:
                optional = fields[6:fields.index("-")]
                mountpoint = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                    fields[4])
                return mountpoint, {o.split(":", 1)[0] for o in optional}
    raise OSError(errno.ENOENT, f"the mount of {path} is not in /proc/self/mountinfo")


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
                                   minor=os.minor(st.st_rdev), data=str(stat.S_IMODE(st.st_mode)),
                                   special_ok=True))
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


def open_devnull() -> int:
    """The host's /dev/null, checked to be char 1:3, to bind over masked files: a path
    an image controls could be swapped for something else (CVE-2025-31133)."""
    fd = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise OSError(1, "/dev/null is not the null device")
    return fd


IN_ROOT = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
SPECIAL_DIRS = ("proc", "sys", "dev")


def open_in_root(root: str, root_fd: int, path: str, is_file: bool = False,
                 create: bool = True) -> int:
    """An O_PATH fd on PATH inside the rootfs, creating missing directories (and, with
    IS_FILE, an empty file as the last component) through fds opened in the root.

    The walk follows the lexical resolution of resolve_in_root; every open is an
    openat2 confined to ROOT_FD, so a symlink swapped in meanwhile still cannot
    leave the rootfs."""
    target = os.path.relpath(resolve_in_root(root, path), root)
    parts = [] if target == "." else target.split("/")
    fd = os.dup(root_fd)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_PATH | (0 if last and is_file else os.O_DIRECTORY)
            prefix = "/".join(parts[:i + 1])
            try:
                new = sc.openat2(root_fd, prefix, flags, IN_ROOT)
            except OSError as e:
                if e.errno != errno.ENOENT or not create:
                    raise
                try:
                    if last and is_file:
                        os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY
                                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd))
                    else:
                        os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile, or a dangling symlink: the open below decides
                new = sc.openat2(root_fd, prefix, flags, IN_ROOT)
            os.close(fd)
            fd = new
    except BaseException:
        os.close(fd)
        raise
    return fd


def checked_target(root: str, root_fd: int, op: MountOp, is_file: bool) -> int:
    """Open OP's target in the rootfs and refuse one that lies outside what OP may touch."""
    fd = open_in_root(root, root_fd, op.target, is_file)
    real = sc.fd_path(fd)
    inside = os.path.relpath(real, root)
    if inside == ".." or inside.startswith("../"):
        os.close(fd)
        raise ExecFailure(125, f"mount target {op.target} resolves outside the container")
    top = inside.split("/", 1)[0]
    if top in SPECIAL_DIRS and not op.special_ok:
        os.close(fd)
        raise ExecFailure(125, f"mount target {op.target} resolves to /{inside} in the "
                          f"container: refusing to mount over /{top}")
    return fd


def _in_dir(root: str, root_fd: int, op: MountOp) -> tuple[int, str]:
    """The checked fd of OP's parent directory and the last component's name."""
    parent, name = os.path.split(os.path.normpath("/" + op.target))
    fd = checked_target(root, root_fd, MountOp(op.kind, parent, special_ok=op.special_ok),
                        False)
    return fd, name


def _device(root: str, root_fd: int, op: MountOp) -> None:
    parent, name = _in_dir(root, root_fd, op)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)
        kind = stat.S_IFBLK if op.fstype == "b" else stat.S_IFCHR
        if op.source:
            _bind_device(parent, name, op, kind)
            return
        mode = int(op.data) if op.data else 0o666
        os.mknod(name, mode | kind, os.makedev(op.major, op.minor), dir_fd=parent)
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:  # mknod's mode went through our umask; chmod has no *at form for O_PATH
            os.chmod(f"/proc/self/fd/{node}", mode)
        finally:
            os.close(node)
    finally:
        os.close(parent)


def _bind_device(parent: int, name: str, op: MountOp, kind: int) -> None:
    """--device: bind the host's node OP.SOURCE onto NAME in PARENT.

    Not mknod: the launcher already runs in the scope, whose device policy grants
    mknod ("m") only when PERMS asks for it, so `--device X:r` would fail.  As runc
    does, the node is checked to still be the device the daemon recorded."""
    src = os.open(op.source, os.O_PATH | os.O_CLOEXEC)
    try:
        st = os.fstat(src)
        if stat.S_IFMT(st.st_mode) != kind or st.st_rdev != os.makedev(op.major, op.minor):
            raise ExecFailure(125, f"{op.source} is no longer device "
                              f"{op.fstype} {op.major}:{op.minor}")
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=parent))
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            sc.mount(f"/proc/self/fd/{src}", f"/proc/self/fd/{node}", None, sc.MS_BIND)
        finally:
            os.close(node)
    finally:
        os.close(src)


def _symlink(root: str, root_fd: int, op: MountOp) -> None:
    parent, name = _in_dir(root, root_fd, op)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)
        os.symlink(op.source, name, dir_fd=parent)
    finally:
        os.close(parent)


def _mask_or_readonly(root: str, op: MountOp, devnull: int) -> int:
    # Targets in the fresh /proc and /sys the launcher mounted: the kernel's files,
    # not the image's.
    target = os.path.join(root, op.target.lstrip("/"))
    if not os.path.lexists(target) or os.path.islink(target):
        return devnull
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
    return devnull


def apply(root: str, ops: list[MountOp]) -> None:
    """Carry out OPS under ROOT (the mounted rootfs, before pivot_root)."""
    devnull = -1
    # The source copies share_sources took: ours to close until bind_onto takes one.
    trees = {op.tree for op in ops if op.tree >= 0}
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for op in ops:
            if op.kind in ("mask", "readonly"):
                devnull = _mask_or_readonly(root, op, devnull)
            elif op.kind == "symlink":
                _symlink(root, root_fd, op)
            elif op.kind == "device":
                _device(root, root_fd, op)
            else:
                is_file = op.kind == "bind" and op.is_file
                fd = checked_target(root, root_fd, op, is_file)
                try:
                    if op.kind == "mount":
                        flags = op.flags | (sc.MS_RDONLY if op.readonly else 0)
                        sc.mount(op.source, f"/proc/self/fd/{fd}", op.fstype, flags,
                                 op.data or None)
                    else:
                        if op.copy_up:
                            copy_up(fd, op.source)
                        trees.discard(op.tree)
                        sc.bind_onto(op.source, fd, op.readonly,
                                     propagation=PROPAGATION.get(op.propagation, 0),
                                     tree=op.tree)
                finally:
                    os.close(fd)
    finally:
        for tree in trees:
            os.close(tree)
        os.close(root_fd)
        if devnull >= 0:
            os.close(devnull)


NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def copy_up(target_fd: int, volume: str) -> None:
    """docker's copy-up: a volume still empty gets the image's files at its mount
    target (TARGET_FD, resolved in the rootfs), with their owners, modes and times.

    Names come from listing directories and are opened with O_NOFOLLOW relative to
    their parent's fd, so a symlink in the image is copied as a symlink, never
    followed out of the rootfs."""
    dst = os.open(volume, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW)
    try:
        if os.listdir(dst):
            return
        src = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target_fd)
        try:
            if not os.listdir(src):  # nothing in the image there (or made just now)
                return
            st = os.fstat(src)
            _copy_dir(src, dst)
            os.fchown(dst, st.st_uid, st.st_gid)
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
        finally:
            os.close(src)
    finally:
        os.close(dst)


def _copy_dir(src: int, dst: int) -> None:
    for entry in os.scandir(src):
        name = entry.name
        st = entry.stat(follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=src)
            d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=dst)
            try:
                _copy_dir(s, d)
                os.fchown(d, st.st_uid, st.st_gid)
                os.fchmod(d, mode)
                os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISREG(st.st_mode):
            s = os.open(name, os.O_RDONLY | NOFOLLOW, dir_fd=src)
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600,
                        dir_fd=dst)
            try:
                while os.sendfile(d, s, None, 1 << 30):
                    pass
                os.fchown(d, st.st_uid, st.st_gid)
                os.fchmod(d, mode)
                os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            with contextlib.suppress(OSError):  # a device node the scope may not make
                os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
