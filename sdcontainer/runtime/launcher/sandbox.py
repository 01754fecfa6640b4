"""Build the sandbox in a freshly forked child and exec the workload.

Runs as PID 1 of the container's new pid namespace (the monitor unshared it
before forking us), or, with PidMode host or container:NAME, as one process
among others of the pid namespace the monitor joined.  Nothing here returns on
success: the process becomes the workload, or, with --init, a small init that
runs it.  Failures are written to
ERRFD as "CODE MESSAGE" so the monitor can report them as docker does (125 for
our own failures, 126 for a command that cannot run, 127 for one not found).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import struct
import termios
from collections.abc import Sequence
from typing import NoReturn

from ...model.spec import LaunchSpec
from .. import syscalls as sc
from . import initbin, mounts, security, userns
from .sandbox_errors import ExecFailure
from .users import resolve_user

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """Bring lo up in a fresh network namespace (docker's 'none' mode has a working lo)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def join_namespace(path: str, kind: int) -> None:
    """Enter the namespace of KIND that PATH (/proc/PID/ns/...) names."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, kind)
    finally:
        os.close(fd)


def enter_namespaces(spec: LaunchSpec) -> None:
    """Join or create the network, ipc and uts namespaces, then a new mount namespace,
    and a new cgroup namespace unless the host's is asked for."""
    flags = sc.CLONE_NEWNS
    for setting, kind in ((spec.net, sc.CLONE_NEWNET), (spec.ipc, sc.CLONE_NEWIPC),
                          (spec.uts, sc.CLONE_NEWUTS)):
        if setting == "new":
            flags |= kind
        elif setting != "host":
            join_namespace(setting, kind)
    if spec.cgroupns == "new":
        # We already are in the scope: its cgroup becomes the namespace's root.
        flags |= sc.CLONE_NEWCGROUP
    sc.unshare(flags)
    if spec.cpus:
        # Inherited by everything the workload starts (CpusetCpus).
        os.sched_setaffinity(0, spec.cpus)
    if spec.net == "new":
        loopback_up()


def open_console(sock: socket.socket, bind_console: bool) -> None:
    """Open a pty on the container's devpts, send its master to the monitor over SOCK,
    and make its slave our controlling terminal and stdio (and /dev/console)."""
    master, slave = sc.open_pty("/dev/pts/ptmx")
    if bind_console:
        name = os.ttyname(slave)
        if not os.path.exists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY, 0o600))
        sc.mount(name, "/dev/console", None, sc.MS_BIND)
    socket.send_fds(sock, [b"m"], [master])
    os.close(master)
    sock.close()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def build_rootfs(spec: LaunchSpec, userns_fd: int = -1) -> None:
    """Mount the overlay and everything in it, then pivot_root into it."""
    # Binds asked to share with the host ((r)shared) are copied first, as peers of the
    # host's mounts; then nothing else we mount may propagate back to the host, but host
    # unmounts may reach us.
    ops = mounts.share_sources(mounts.plan(spec))
    sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC)
    layers = spec.layers
    if userns_fd >= 0:
        layers = userns.idmap_layers(layers, os.path.join(os.path.dirname(spec.rootfs),
                                                          "idmapped"), userns_fd)
    lower = ":".join(reversed(layers))
    sc.mount("overlay", spec.rootfs, "overlay", 0,
             f"lowerdir={lower},upperdir={spec.upper},workdir={spec.work}")
    for special in ("proc", "sys", "dev"):
        # An image making these symlinks would have us mount elsewhere (CVE-2019-19921).
        if os.path.islink(os.path.join(spec.rootfs, special)):
            raise ExecFailure(125, f"/{special} in the image is a symlink: refusing to mount "
                              "over it")
    mounts.apply(spec.rootfs, ops)
    os.chdir(spec.rootfs)
    # pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
    # no host path reachable (no directory for it is needed in the image).
    sc.pivot_root(".", ".")
    sc.umount(".", sc.MNT_DETACH)
    os.chdir("/")
    if spec.read_only:
        sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)


def prepare_process(cwd: str, user: str, env: Sequence[str],
                    group_add: Sequence[str] = ()) -> dict[str, str]:
    """Switch to USER and CWD inside the container; return the environment to exec with."""
    ident = resolve_user(user, group_add)
    environ = dict(e.partition("=")[::2] for e in env)
    environ.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    environ.setdefault("HOME", ident.home)
    if not os.path.isdir(cwd):
        os.makedirs(cwd, mode=0o755, exist_ok=True)
        os.chown(cwd, ident.uid, ident.gid)
    os.setgroups(ident.groups)
    os.setgid(ident.gid)
    os.setuid(ident.uid)
    try:
        os.chdir(cwd)
        # A cwd reached through a leaked host fd would lie outside our root (runc
        # CVE-2024-21626): the kernel then names it "(unreachable)...".
        if not os.getcwd().startswith("/"):
            raise OSError(2, "outside the container")
    except OSError as e:
        raise ExecFailure(125, f"cannot change to working directory {cwd}: {e.strerror}") from e
    return environ


def close_fds(*keep: int) -> None:
    """Close every fd but stdio and KEEP: nothing of the monitor's reaches the workload."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def apply_labels(spec: LaunchSpec) -> None:
    """The AppArmor profile and SELinux label of the next exec.  An exec session sets them
    before it joins the container's mount namespace: its /proc/thread-self lives in the
    host's /proc, since the container's shows only the container's pid namespace."""
    security.apply_apparmor(spec.apparmor)
    security.apply_selinux(spec.process_label)


def become(spec: LaunchSpec, cwd: str, user: str, env: Sequence[str],
           userns_fd: int = -1, labels: bool = True) -> dict[str, str]:
    """The user namespace (--userns=auto), labels, the container's user and cwd, the
    capability bounding set, capabilities, no_new_privs and seccomp, in the order each
    allows the next; returns the environment to exec with."""
    try:
        if userns_fd >= 0:
            # Joining a user namespace hands us a full bounding set in it: drop after.
            sc.setns(userns_fd, sc.CLONE_NEWUSER)
            os.close(userns_fd)
        security.drop_bounding_set(spec.caps, sc.last_cap())
        if labels:
            apply_labels(spec)
        security.harden_before_user(spec.caps, spec.no_new_privs, spec.seccomp)
        # The image's files (passwd, group, the working directory) are read and made
        # with the container's capabilities, not the host's.
        limit_effective(spec.caps)
        environ = prepare_process(cwd, user, env, spec.group_add)
        security.harden_after_user(spec.caps, spec.no_new_privs, spec.seccomp)
    except OSError as e:
        raise ExecFailure(125, f"cannot drop privileges: {e.strerror}") from e
    return environ


def limit_effective(caps: Sequence[str]) -> None:
    """Keep only CAPS (and what switching user needs) effective; permitted stays, so the
    final capability step can still set exactly CAPS."""
    _, permitted, _ = sc.capget()
    sc.capset(security.cap_mask([*caps, "SETUID", "SETGID"]) & permitted, permitted, 0)


_OOM_PROTECTED = False


def protect_from_oom() -> bool:
    """Make the calling process (the monitor) the OOM killer's last choice (-1000), as
    conmon does; False where we lack CAP_SYS_RESOURCE to lower our score."""
    global _OOM_PROTECTED
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-1000")
    except OSError:
        return False
    _OOM_PROTECTED = True
    return True


def reset_oom_score() -> None:
    """Set the score of a process the monitor forks (the workload, an exec session).

    Normally back to 0, undoing the monitor's -1000.  Where the monitor could not lower
    its own score (root without CAP_SYS_RESOURCE), the workload raises its own to the
    maximum instead (which needs no privilege): within the container's memory limit
    the kernel must kill the workload, not the witness of its death."""
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("0" if _OOM_PROTECTED else "1000")


def reset_signals() -> None:
    """Give the workload default dispositions and an empty mask (the monitor ignores many)."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    for glibc_sig in sc.GLIBC_SIGNALS:
        with contextlib.suppress(OSError):
            sc.set_disposition(glibc_sig, sc.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def exec_workload(argv: list[str], environ: dict[str, str]) -> NoReturn:
    """execvpe with docker's exit codes for what went wrong."""
    if not argv:
        raise ExecFailure(125, "no command specified")
    try:
        os.execvpe(argv[0], argv, environ)
    except FileNotFoundError as e:
        if "/" in argv[0]:
            raise ExecFailure(127, f"exec {argv[0]}: no such file or directory") from e
        raise ExecFailure(127, f"exec: \"{argv[0]}\": executable file not found in $PATH") from e
    except PermissionError as e:
        raise ExecFailure(126, f"exec {argv[0]}: permission denied") from e
    except OSError as e:
        code = 126 if e.errno in (errno.ENOEXEC, errno.EISDIR, errno.ETXTBSY) else 125
        raise ExecFailure(code, f"exec {argv[0]}: {e.strerror}") from e


def report(errfd: int, failure: ExecFailure) -> NoReturn:
    """Tell the monitor why we failed and exit with docker's code."""
    try:
        os.write(errfd, f"{failure.code} {failure}".encode()[:4000])
    finally:
        os._exit(failure.code)


def launch(spec: LaunchSpec, errfd: int, tty: socket.socket | None,
           userns_fd: int = -1) -> NoReturn:
    """The child's whole life: namespaces, rootfs, identity, exec.  USERNS_FD is the
    user namespace to end up in (--userns=auto), made by the monitor."""
    try:
        try:
            reset_oom_score()
            enter_namespaces(spec)
            if spec.uts == "new":  # a joined namespace's host name is its owner's
                socket.sethostname(spec.hostname)
            build_rootfs(spec, userns_fd)
            if tty is not None:
                open_console(tty, bind_console=True)
            close_fds(errfd, userns_fd, initbin.fd())
        except OSError as e:
            what = f"{e.strerror}: {e.filename}" if e.filename else (e.strerror or str(e))
            raise ExecFailure(125, f"cannot set up the container: {what}") from e
        environ = become(spec, spec.cwd or "/", spec.user, spec.env, userns_fd)
        reset_signals()
        if spec.init:
            # Not PID 1 of a pid namespace of its own: tini must register as subreaper.
            initbin.exec_init(spec.argv, environ, subreaper=spec.pid != "new")
        exec_workload(spec.argv, environ)
    except ExecFailure as failure:
        report(errfd, failure)
    except BaseException as e:  # anything else must still be reported, never a traceback
        report(errfd, ExecFailure(125, f"launcher failed: {e}"))


def exec_session(spec: LaunchSpec, argv: list[str], cwd: str, user: str, env: Sequence[str],
                 namespaces: Sequence[int], pid_ns: int, errfd: int,
                 tty: socket.socket | None, userns_fd: int = -1) -> NoReturn:
    """An exec session, from the monitor's fork to tini running ARGV.

    We are forked outside the container's pid namespace, so nothing in the container
    can see us while we still are a copy of the monitor (a host binary, the daemon's
    heap).  We join every namespace, the mount namespace last (root and cwd become
    the container's), take the container's identity, capabilities and seccomp filter,
    and exec the static init from its sealed memfd.  Only its child, forked into the
    container's pid namespace (PID_NS) and already inside everything, is visible there.
    """
    try:
        try:
            sc.set_dumpable(False)
            reset_oom_score()
            sc.setns(pid_ns, sc.CLONE_NEWPID)  # for our children only
            apply_labels(spec)
            for fd in namespaces:
                sc.setns(fd)
            if tty is not None:
                open_console(tty, bind_console=False)
            close_fds(errfd, userns_fd, initbin.fd())
        except OSError as e:
            raise ExecFailure(126, f"cannot enter the container: {e.strerror}") from e
        environ = become(spec, cwd, user, env, userns_fd, labels=False)
        reset_signals()
        initbin.exec_init(argv, environ, subreaper=True)
    except ExecFailure as failure:
        report(errfd, failure)
    except BaseException as e:  # anything else must still be reported, never a traceback
        report(errfd, ExecFailure(126, f"exec failed: {e}"))
