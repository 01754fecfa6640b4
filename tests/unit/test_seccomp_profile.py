"""The seccomp profile interpreter and our default profile, without a box: the plan is
pure Python, and a forked child proves the compiled filter answers as planned."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sdcontainer.errors import InvalidArgument
from sdcontainer.runtime.launcher import seccomp, security

CONTAINERS_COMMON = Path("/usr/share/containers/seccomp.json")
IO_URING = ("io_uring_setup", "io_uring_enter", "io_uring_register")
# What containers-common (podman) allows to everyone but docker, and so our default,
# keeps behind a capability; None: docker refuses it whatever the capabilities
# (keyctl: the kernel keyring is not namespaced; syscall, timerfd: MIPS's indirect
# syscall and a call no kernel shipped).
HELD_BACK: dict[str, str | None] = {
    **dict.fromkeys(["clone3", "fsconfig", "fsmount", "fsopen", "fspick", "mount",
                     "mount_setattr", "move_mount", "open_tree", "setns", "syslog", "umount",
                     "umount2", "unshare"], "SYS_ADMIN"),
    **dict.fromkeys(["get_mempolicy", "mbind", "set_mempolicy"], "SYS_NICE"),
    "pidfd_getfd": "SYS_PTRACE", "reboot": "SYS_BOOT",
    "keyctl": None, "pivot_root": None, "syscall": None, "timerfd": None,
}
KERNEL = (6, 1, 0)


def default_plan(*extra_caps: str, arch: str = "amd64") -> seccomp.Plan:
    return seccomp.plan(seccomp.default_profile(), [*security.DEFAULT_CAPS, *extra_caps],
                        arch=arch, kernel=KERNEL)


def unconditional_allows(profile: dict[str, Any]) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
            and not r.get("args") and not r.get("includes") and not r.get("excludes")
            for n in r["names"]}


@pytest.mark.skipif(not CONTAINERS_COMMON.exists(), reason="containers-common not installed")
def test_default_allows_what_containers_common_allows_but_io_uring() -> None:
    theirs = unconditional_allows(json.loads(CONTAINERS_COMMON.read_text()))
    plan = default_plan()
    missing = sorted(n for n in theirs - set(HELD_BACK) - set(IO_URING) if not plan.allowed(n))
    assert missing == []
    for name, cap in HELD_BACK.items():
        assert not plan.allowed(name), name
        if cap is not None:
            assert default_plan(cap).allowed(name), name
        else:
            assert not default_plan(*security.CAPS).allowed(name), name


def test_io_uring_is_refused_with_eperm_whatever_the_capabilities() -> None:
    for plan in (default_plan(), default_plan(*security.CAPS)):
        for name in IO_URING:
            assert not plan.allowed(name)
            assert plan.action_for(name) == seccomp.Action("SCMP_ACT_ERRNO", errno.EPERM)


def test_default_conditions_follow_docker() -> None:
    plan = default_plan()
    # clone only without namespace flags; clone3 says ENOSYS so libc falls back to clone.
    assert [r.args for r in plan.rules if r.name == "clone"] == [
        (seccomp.ArgFilter(0, "SCMP_CMP_MASKED_EQ", 0x7E020000, 0),)]
    assert plan.action_for("clone3") == seccomp.Action("SCMP_ACT_ERRNO", errno.ENOSYS)
    admin = default_plan("SYS_ADMIN")
    assert admin.action_for("clone") == admin.action_for("clone3") == seccomp.Action(
        "SCMP_ACT_ALLOW")
    # personality: the query and four personas, nothing else.
    values = sorted(r.args[0].value for r in plan.rules if r.name == "personality")
    assert values == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    # arch groups: arch_prctl on amd64, not on arm64; the arch map adds x86 and x32.
    assert plan.allowed("arch_prctl") and plan.arches == (
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    arm = default_plan(arch="arm64")
    assert not arm.allowed("arch_prctl") and arm.allowed("set_tls")
    assert arm.arches == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")
    # minKernel: ptrace from 4.8 on.
    old = seccomp.plan(seccomp.default_profile(), security.DEFAULT_CAPS, "amd64", (4, 4))
    assert plan.allowed("ptrace") and not old.allowed("ptrace")


@pytest.mark.skipif(not CONTAINERS_COMMON.exists(), reason="containers-common not installed")
def test_containers_common_profile_is_read_as_docker_reads_it() -> None:
    profile = seccomp.load_profile(CONTAINERS_COMMON.read_text())
    plain = seccomp.plan(profile, security.DEFAULT_CAPS, "amd64", KERNEL)
    for name in ("bpf", "perf_event_open", "setns"):
        assert plain.action_for(name) == seccomp.Action("SCMP_ACT_ERRNO", errno.EPERM), name
    admin = seccomp.plan(profile, [*security.DEFAULT_CAPS, "SYS_ADMIN"], "amd64", KERNEL)
    for name in ("bpf", "perf_event_open", "setns"):
        assert admin.action_for(name) == seccomp.Action("SCMP_ACT_ALLOW"), name
    assert plain.default == seccomp.Action("SCMP_ACT_ERRNO", errno.ENOSYS)


def test_includes_and_excludes() -> None:
    profile = seccomp.parse_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": ["amd64"]}},
        {"names": ["b"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["amd64"]}},
        {"names": ["c"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "6.2"}},
        {"names": ["d"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "6.2"}},
        {"names": ["e"], "action": "SCMP_ACT_ERRNO",
         "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
        {"names": ["f"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_NET_ADMIN"]}},
        {"name": "g", "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["g"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]})

    def denied(caps: list[str], kernel: tuple[int, ...]) -> list[str]:
        plan = seccomp.plan(profile, caps, "amd64", kernel)
        return [n for n in "abcdefg" if not plan.allowed(n)]

    assert denied([], (6, 1, 0)) == ["b", "d", "f", "g"]
    assert denied(["SYS_ADMIN"], (6, 2, 0)) == ["b", "c", "f", "g"]
    assert denied(["SYS_ADMIN", "NET_ADMIN"], (6, 10)) == ["b", "c", "e", "g"]
    # The strongest of two applicable whole-call rules wins, as the kernel ranks actions.
    plan = seccomp.plan(profile, [], "amd64", (6, 1))
    assert plan.action_for("g") == seccomp.Action("SCMP_ACT_KILL_PROCESS")


@pytest.mark.parametrize(("profile", "complaint"), [
    ([], "must be a JSON object"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"]}]}, "syscalls[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action":
      "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "argument index must be an integer from 0 to 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action":
      "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
     "unknown argument operator"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action":
      "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}}]}, "minKernel"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "unknown architecture 'SCMP_ARCH_Z80'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "either architectures or archMap"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "notify listener"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99999}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action":
      "SCMP_ACT_ERRNO"}]}, "names no syscall"),
])
def test_malformed_profiles_are_refused_in_one_line(profile: Any, complaint: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        security.validate_profile(profile)
    assert complaint in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("seccomp profile: ")


def _in_filtered_child(mode: str, caps: list[str], calls: list[tuple[int, ...]]) -> list[int]:
    """Fork, load the filter for MODE under no_new_privs, make each raw syscall; the
    errno of each (0 for success)."""
    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
            seccomp.install(mode, caps)
            out = []
            for nr, *args in calls:
                ret = libc.syscall(nr, *[ctypes.c_ulong(a) for a in args])
                out.append(ctypes.get_errno() if ret == -1 else 0)
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result: list[int] = json.loads(data)
    return result


@pytest.mark.skipif(os.uname().machine != "x86_64" or seccomp._lib is None,
                    reason="x86_64 syscall numbers; needs python3-seccomp")
@pytest.mark.parametrize("precompiled", [True, False])
def test_the_loaded_default_filter_answers_as_planned(precompiled: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if precompiled:
        assert seccomp._COMPILED, "security.py generates the default caps' filter at import"
    else:
        monkeypatch.setattr(seccomp, "_COMPILED", {})
    calls = [(425, 1, 0),            # io_uring_setup: not on the list
             (1000,),                # a syscall no kernel has yet
             (323, 1),               # userfaultfd(UFFD_USER_MODE_ONLY): docker refuses it
             (135, 0xFFFFFFFF),      # personality query: allowed
             (135, 0x0040000),       # personality(ADDR_NO_RANDOMIZE): refused
             (435, 0, 0),            # clone3: ENOSYS, so libc uses clone
             (39,)]                  # getpid
    assert _in_filtered_child("default", security.DEFAULT_CAPS, calls) == [
        errno.EPERM, errno.EPERM, errno.EPERM, 0, errno.EPERM, errno.ENOSYS, 0]
