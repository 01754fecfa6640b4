"""The system calls Python 3.11 lacks, through ctypes, in one place.

Every wrapper checks the return value and raises OSError with errno and a
sentence naming the call and its arguments, adding a hint when EPERM usually
means "not root" or "blocked by seccomp".  The module imports nothing but the
stdlib so the launcher can use it in a freshly forked child.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_STRICTATIME = 0x1000000

MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

_SYS_PIVOT_ROOT = {
    "x86_64": 155,
    "aarch64": 41,
    "riscv64": 41,
    "ppc64le": 203,
    "s390x": 217,
    "i686": 217,
    "armv7l": 218,
}

_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        message = f"{what}: {os.strerror(err)}"
        if err == errno.EPERM:
            message += " (not root, or blocked by a seccomp filter or a user namespace)"
        elif err == errno.ENOSYS:
            message += " (the kernel lacks it, or a seccomp filter hides it)"
        raise OSError(err, message)
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    """Move the calling thread into new namespaces (CLONE_NEW* flags)."""
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace behind FD (from /proc/PID/ns/* or a bind-mounted file)."""
    _check(_libc.setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """mount(2); raises OSError naming source, target and type on failure."""
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
        f"mount {source or 'none'} on {target} (type {fstype or '-'}, options {data or '-'})",
    )


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2), which glibc does not wrap."""
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(
        _libc.syscall(number, _b(new_root), _b(put_old)),
        f"pivot_root({new_root}, {put_old})",
    )


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) with integer arguments."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134, "riscv64": 134, "ppc64le": 173,
                     "s390x": 174}
SIG_DFL, SIG_IGN = 0, 1
# Signals glibc keeps for itself (thread cancellation, setxid): its sigaction and
# Python's signal module refuse them, yet `kill -s 32` reaches every process.
GLIBC_SIGNALS = (32, 33)


def set_disposition(sig: int, handler: int) -> None:
    """SIG_DFL or SIG_IGN for SIG through the raw rt_sigaction (GLIBC_SIGNALS too)."""
    number = _SYS_RT_SIGACTION.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"rt_sigaction: no syscall number for {platform.machine()}")
    act = (ctypes.c_ulong * 4)(handler, 0, 0, 0)  # handler first; the rest zero on every arch
    _check(_libc.syscall(number, sig, act, None, 8), f"rt_sigaction({sig})")


def set_pdeathsig(sig: int) -> None:
    """Ask the kernel to send SIG to us when our parent dies."""
    prctl(PR_SET_PDEATHSIG, sig)


def set_child_subreaper() -> None:
    """Become the reaper of orphaned descendants (so exits are seen, not lost to PID 1)."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_no_new_privs() -> None:
    """Forbid gaining privileges through execve (setuid bits, file capabilities)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


# The new mount API (Linux 5.12+: idmapped mounts), same numbers on every architecture.
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x100000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def idmapped_bind(source: str, target: str, userns_fd: int) -> None:
    """Bind SOURCE on TARGET with its ids shifted through the user namespace USERNS_FD."""
    fd = _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, _b(source),
                              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), f"open_tree {source}")
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        _check(_libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                             ctypes.c_size_t(ctypes.sizeof(attr))),
               f"mount_setattr (idmap) {source}")
        _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, _b(target),
                             MOVE_MOUNT_F_EMPTY_PATH), f"move_mount {source} to {target}")
    finally:
        os.close(fd)


_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91, "ppc64le": 184, "s390x": 185,
               "i686": 185, "armv7l": 185}
PR_SET_DUMPABLE = 4


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks) with capset(2)."""
    number = _SYS_CAPSET.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"capset: unknown syscall number on {platform.machine()}")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(
        effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
        effective >> 32, permitted >> 32, inheritable >> 32)
    _check(_libc.syscall(number, header, data), "capset")


def drop_bounding(cap: int) -> None:
    """Remove CAP from the bounding set (no exec can regain it)."""
    prctl(PR_CAPBSET_DROP, cap)


def set_dumpable(dumpable: bool) -> None:
    """A non-dumpable process's /proc/PID files (exe, fds) are closed to other processes."""
    prctl(PR_SET_DUMPABLE, int(dumpable))


def set_process_name(name: str) -> None:
    """Set the comm name shown by ps and in the journal's _COMM (15 bytes kept)."""
    buf = ctypes.create_string_buffer(os.fsencode(name)[:15])
    _check(
        _libc.prctl(PR_SET_NAME, ctypes.cast(buf, ctypes.c_void_p).value or 0, 0, 0, 0),
        "prctl(PR_SET_NAME)",
    )


PR_CAPBSET_READ = 23


def last_cap() -> int:
    """The highest capability number this kernel knows, probed with PR_CAPBSET_READ.

    Read from the kernel rather than /proc/sys/kernel/cap_last_cap: once the
    container's mounts exist, a file there could be the image's (a volume over
    it holding 0 would leave the whole bounding set in place)."""
    cap = 0
    while cap < 256:
        if _libc.prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) < 0:
            break
        cap += 1
    return cap


_SYS_CAPGET = {"x86_64": 125, "aarch64": 90, "riscv64": 90, "ppc64le": 183, "s390x": 184,
               "i686": 184, "armv7l": 184}


def capget() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) capability masks, from capget(2)
    rather than /proc, which may be the container's by the time we ask."""
    number = _SYS_CAPGET.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"capget: unknown syscall number on {platform.machine()}")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(number, header, data), "capget")
    return (data[0] | data[3] << 32, data[1] | data[4] << 32, data[2] | data[5] << 32)


# openat2(2) (Linux 5.6+), same number on every architecture.
SYS_OPENAT2 = 437
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open PATH relative to DIRFD under RESOLVE's rules (RESOLVE_IN_ROOT
    treats DIRFD as /, so no symlink or '..' can leave it); returns the new fd."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_libc.syscall(SYS_OPENAT2, dirfd, _b(path), ctypes.byref(how),
                                ctypes.c_size_t(ctypes.sizeof(how))), f"openat2 {path}")


MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1


def clone_tree(source: str, recursive: bool = True) -> int:
    """A detached copy of SOURCE (open_tree OPEN_TREE_CLONE), as an fd for bind_onto.

    Its mounts keep the peer group or master of the mounts they copy: taken before
    the launcher makes / a slave, a copy of a shared mount still shares with it."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, _b(source), flags),
                  f"open_tree {source}")


def bind_onto(source: str, target_fd: int, readonly: bool, recursive: bool = True,
              propagation: int = 0, tree: int = -1) -> None:
    """Bind SOURCE onto the directory or file TARGET_FD was opened on (O_PATH).

    The new mount API attaches a detached copy of SOURCE to the very inode we
    resolved and checked, so nobody can swap a path component for a symlink
    between the check and the mount (runc CVE-2021-30465); a read-only bind is
    read-only, and PROPAGATION (MS_SHARED, MS_SLAVE or MS_PRIVATE, with MS_REC for
    every mount of the copy) in effect, before it is ever visible.  TREE, a
    clone_tree() of SOURCE taken earlier, is attached instead of a new copy (and
    closed)."""
    fd = tree if tree >= 0 else clone_tree(source, recursive)
    try:
        if readonly:
            attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
            _check(_libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                                 ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
                   f"mount_setattr (read-only) {source}")
        if propagation & ~MS_REC:
            attr = _MountAttr(0, 0, propagation & ~MS_REC, 0)
            rec = AT_RECURSIVE if propagation & MS_REC else 0
            _check(_libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH | rec,
                                 ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
                   f"mount_setattr (propagation) {source}")
        _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", target_fd, b"",
                             MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
               f"move_mount {source}")
    finally:
        os.close(fd)


def fd_path(fd: int) -> str:
    """The path the kernel has for FD, in our mount namespace."""
    return os.readlink(f"/proc/self/fd/{fd}")


SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6


def detached_mount(fstype: str, options: list[tuple[str, str]]) -> int:
    """A new FSTYPE filesystem, configured by OPTIONS (key, value) and never attached
    anywhere: the returned fd is its root, and closing it unmounts it, so nothing can
    stay mounted behind us.  A key may repeat (overlayfs' "lowerdir+")."""
    fs = _check(_libc.syscall(SYS_FSOPEN, _b(fstype), 1), f"fsopen {fstype}")  # CLOEXEC
    try:
        for key, value in options:
            _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_SET_STRING, _b(key), _b(value), 0),
                   f"fsconfig {fstype} {key}={value}")
        _check(_libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0),
               f"fsconfig {fstype} create")
        return _check(_libc.syscall(SYS_FSMOUNT, fs, 1, 0), f"fsmount {fstype}")
    finally:
        os.close(fs)


# The pty ioctls: generic values, and powerpc's, whose _IO/_IOW encode differently.
_PPC = platform.machine().startswith("ppc")
TIOCSPTLCK = 0x80045431 if _PPC else 0x40045431
TIOCGPTPEER = 0x20005441 if _PPC else 0x5441
PTMX_MAJOR, PTMX_MINOR = 5, 2


def open_pty(ptmx: str) -> tuple[int, int]:
    """A (master, slave) pair from the devpts instance whose ptmx node is PTMX.

    Unlike os.openpty, nothing is opened by a path the container controls: PTMX is
    opened without blocking and checked to be the ptmx device (an image could leave a
    FIFO there), and the slave comes from the master itself (TIOCGPTPEER), not from
    /dev/pts/N."""
    import fcntl
    import stat
    import struct

    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(master)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(PTMX_MAJOR, PTMX_MINOR):
            raise OSError(errno.EPERM, f"{ptmx} is not the pty multiplexer")
        os.set_blocking(master, True)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, int(slave)
