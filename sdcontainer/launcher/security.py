"""The sandbox's security settings, as docker and runc apply them by default.

Capabilities (docker's default set, everything else dropped from the bounding
set too), no_new_privs, a seccomp filter, masked and read-only /proc and /sys
paths, AppArmor and SELinux process labels.  The daemon decides the settings
(`resolve_*` here are shared with it); the launcher applies them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterable
from typing import Any

from .. import syscalls as sc
from .sandbox_errors import ExecFailure

try:  # imported here, so the zygote holds it and no container start pays for it
    import seccomp as _seccomp  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    _seccomp = None

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
# The OCI runtime spec's defaults, as runc and docker mask them.
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

NS_FLAGS = [sc.CLONE_NEWNS, sc.CLONE_NEWUTS, sc.CLONE_NEWIPC, sc.CLONE_NEWUSER, sc.CLONE_NEWPID,
            sc.CLONE_NEWNET, sc.CLONE_NEWCGROUP]
# What docker's default profile denies to a container without CAP_SYS_ADMIN and friends;
# the names a kernel or libseccomp does not know are skipped.
DENIED = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
    "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
    "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "quotactl",
    "quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday",
    "stime", "swapoff", "swapon", "_sysctl", "sysfs", "umount", "umount2", "unshare",
    "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
]
# Allowed back when the container holds the capability that makes them safe to give.
CAP_ALLOWS = {
    "SYS_ADMIN": ["mount", "umount", "umount2", "unshare", "setns", "pivot_root", "fsconfig",
                  "fsmount", "fsopen", "fspick", "move_mount", "open_tree", "mount_setattr",
                  "quotactl", "quotactl_fd", "lookup_dcookie", "perf_event_open"],
    "SYS_MODULE": ["init_module", "finit_module", "delete_module"],
    "SYS_BOOT": ["reboot"],
    "SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    "SYS_PACCT": ["acct"],
    "SYS_RAWIO": ["iopl", "ioperm"],
    "DAC_READ_SEARCH": ["open_by_handle_at", "name_to_handle_at"],
    "SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "move_pages"],
    "SYS_PTRACE": ["kcmp"],
}


def cap_name(name: str) -> str:
    """'cap_net_admin', 'NET_ADMIN', 'CAP_NET_ADMIN' -> 'NET_ADMIN'."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def resolve_caps(cap_add: Iterable[str], cap_drop: Iterable[str], privileged: bool) -> list[str]:
    """The container's capability set, as docker computes it (ALL allowed on both sides)."""
    from ..errors import InvalidArgument

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
    """Our permitted set: a host may withhold some capabilities from root itself."""
    with open("/proc/thread-self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return 0


def _seccomp_module() -> Any:
    if _seccomp is None:
        raise ExecFailure(125, "seccomp support is missing (install python3-seccomp), or run "
                          "with --security-opt seccomp=unconfined")
    return _seccomp


def _add(f: Any, action: Any, name: str, *args: Any) -> None:
    # A name this architecture or libseccomp version does not know is skipped.
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        f.add_rule(action, name, *args)


def default_filter(caps: list[str]) -> Any:
    """docker-like default: everything allowed but the dangerous calls above."""
    seccomp = _seccomp_module()
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    allowed = {name for cap, names in CAP_ALLOWS.items() if cap in caps for name in names}
    eperm = seccomp.ERRNO(errno.EPERM)
    for name in DENIED:
        if name not in allowed:
            _add(f, eperm, name)
    if "SYS_ADMIN" not in caps:
        # New namespaces are for privileged containers only; clone3 hides its flags
        # in memory a filter cannot read, so it says ENOSYS and libc falls back to clone.
        for flag in NS_FLAGS:
            _add(f, eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        _add(f, seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f


ACTIONS = {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
           "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"}
OPS = {"SCMP_CMP_EQ": "EQ", "SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE",
       "SCMP_CMP_GT": "GT", "SCMP_CMP_GE": "GE", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}


def validate_profile(profile: Any) -> None:
    """Refuse a docker seccomp profile we cannot apply, naming what is wrong."""
    from ..errors import InvalidArgument

    if not isinstance(profile, dict):
        raise InvalidArgument("seccomp profile must be a JSON object")
    if profile.get("defaultAction") not in ACTIONS:
        raise InvalidArgument(f"seccomp profile: unsupported defaultAction "
                              f"{profile.get('defaultAction')!r}")
    for rule in profile.get("syscalls") or []:
        if not isinstance(rule, dict) or rule.get("action") not in ACTIONS:
            raise InvalidArgument(f"seccomp profile: bad rule {rule!r}")
        for a in rule.get("args") or []:
            if not isinstance(a, dict) or a.get("op") not in OPS:
                raise InvalidArgument(f"seccomp profile: bad argument filter {a!r}")


def profile_filter(profile: dict[str, Any]) -> Any:
    """A filter from a docker/OCI JSON seccomp profile (names, actions, argument filters)."""
    seccomp = _seccomp_module()

    def action(name: str, errno_ret: int | None) -> Any:
        if name == "SCMP_ACT_ALLOW":
            return seccomp.ALLOW
        if name == "SCMP_ACT_ERRNO":
            return seccomp.ERRNO(errno_ret if errno_ret is not None else errno.EPERM)
        if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
            return seccomp.KILL
        if name == "SCMP_ACT_KILL_PROCESS":
            return seccomp.KILL_PROCESS
        if name == "SCMP_ACT_TRAP":
            return seccomp.TRAP
        return seccomp.LOG

    default = action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    f = seccomp.SyscallFilter(defaction=default)
    for rule in profile.get("syscalls") or []:
        act = action(rule["action"], rule.get("errnoRet"))
        if act == default:
            continue
        args = [seccomp.Arg(a["index"], getattr(seccomp, OPS[a["op"]]), a.get("value", 0),
                            a.get("valueTwo", 0)) for a in rule.get("args") or []]
        for name in rule.get("names") or [rule.get("name")]:
            if name:
                _add(f, act, name, *args)
    return f


def install_seccomp(mode: str, caps: list[str]) -> None:
    """Load the filter (MODE: "default", "unconfined", or a JSON profile's text).  Done
    while we still hold CAP_SYS_ADMIN, so libseccomp need not force no_new_privs."""
    if mode == "unconfined":
        return
    f = default_filter(caps) if mode == "default" else profile_filter(json.loads(mode))
    try:
        f.set_attr(_seccomp_module().Attr.CTL_NNP, 0)
        f.load()
    except Exception as e:
        raise ExecFailure(125, f"cannot load the seccomp filter: {e}") from e


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
