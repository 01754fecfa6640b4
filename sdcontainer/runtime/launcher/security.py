"""The sandbox's security settings, as docker and runc apply them by default.

Capabilities (docker's default set, everything else dropped from the bounding
set too), no_new_privs, a seccomp filter, masked and read-only /proc and /sys
paths, AppArmor and SELinux process labels.  The daemon decides the settings
(`resolve_*` here are shared with it); the launcher applies them.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from typing import Any

from .. import syscalls as sc
from . import seccomp
from .sandbox_errors import ExecFailure

CAPS = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
# docker's (and podman's) default set.
DEFAULT_CAPS = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]
seccomp.precompile(DEFAULT_CAPS)  # the common case, ready before the zygote forks
# The OCI runtime spec's defaults, as runc and docker mask them.
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

cap_name = seccomp.cap_name


def resolve_caps(cap_add: Iterable[str], cap_drop: Iterable[str], privileged: bool) -> list[str]:
    """The container's capability set, as docker computes it (ALL allowed on both sides)."""
    from ...errors import InvalidArgument

    adds, drops = [cap_name(c) for c in cap_add], [cap_name(c) for c in cap_drop]
    for c in adds + drops:
        if c != "ALL" and c not in CAPS:
            raise InvalidArgument(f"unknown capability: {c!r}")
    if privileged:
        return list(CAPS)
    caps = list(CAPS) if "ALL" in adds else list(DEFAULT_CAPS)
    caps += [c for c in adds if c != "ALL" and c not in caps]
    if "ALL" in drops:
        return [c for c in adds if c != "ALL"]
    return [c for c in caps if c not in drops]


def cap_mask(names: Iterable[str]) -> int:
    """The bit mask of capability NAMES."""
    mask = 0
    for n in names:
        mask |= 1 << CAPS.index(n)
    return mask


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPS) - 1


def drop_bounding_set(keep: list[str], highest: int) -> None:
    """Drop every capability not in KEEP from the bounding set (needs CAP_SETPCAP: do it first)."""
    wanted = cap_mask(keep)
    for cap in range(highest + 1):
        if not wanted & (1 << cap):
            try:
                sc.drop_bounding(cap)
            except OSError as e:
                if e.errno != errno.EINVAL:  # a number this kernel does not know
                    raise


def set_caps(keep: list[str]) -> None:
    """Effective and permitted = KEEP for root, nothing for other users (setuid already
    cleared theirs); inheritable always empty (runc's CVE-2022-29162 fix)."""
    mask = cap_mask(keep) & current_permitted() if os.getuid() == 0 else 0
    sc.capset(mask, mask, 0)


def current_permitted() -> int:
    """Our permitted set: a host may withhold some capabilities from root itself.  Asked
    of the kernel: an exec session's /proc is the container's, where we have no entry."""
    return sc.capget()[1]


def validate_profile(profile: Any) -> None:
    """Refuse a docker seccomp profile we cannot apply, in one line naming what is wrong."""
    seccomp.parse_profile(profile)


def install_seccomp(mode: str, caps: list[str]) -> None:
    """Load the filter (MODE: "default", "unconfined", or a JSON profile's text).  Done
    while we still hold CAP_SYS_ADMIN, so libseccomp need not force no_new_privs."""
    seccomp.install(mode, caps)


def apply_apparmor(profile: str) -> None:
    """Ask AppArmor to confine the next exec with PROFILE."""
    if not profile:
        return
    for path in ("/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"):
        try:
            with open(path, "w") as f:
                f.write(f"exec {profile}")
            return
        except OSError:
            continue
    raise ExecFailure(125, f"cannot apply AppArmor profile {profile!r}")


def apply_selinux(label: str) -> None:
    """Run the next exec with SELinux process LABEL."""
    if not label:
        return
    try:
        with open("/proc/thread-self/attr/exec", "w") as f:
            f.write(label)
    except OSError as e:
        raise ExecFailure(125, f"cannot set SELinux label {label!r}: {e.strerror}") from e


def harden_before_user(caps: list[str], no_new_privs: bool, seccomp_mode: str) -> None:
    """Without no_new_privs, a filter can only be loaded while we hold CAP_SYS_ADMIN:
    before the switch to the container's user (runc's order)."""
    if not no_new_privs:
        install_seccomp(seccomp_mode, caps)


def harden_after_user(caps: list[str], no_new_privs: bool, seccomp_mode: str) -> None:
    """The last steps before exec: capabilities, then no_new_privs and the filter."""
    set_caps(caps)
    if no_new_privs:
        sc.set_no_new_privs()
        install_seccomp(seccomp_mode, caps)
