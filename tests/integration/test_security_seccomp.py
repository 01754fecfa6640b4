"""The default seccomp filter is an allow-list with docker's semantics (io_uring and every
unlisted or future syscall refused), and --security-opt seccomp=FILE honours docker's
profile format: includes, excludes, arches, minKernel, defaultErrnoRet.

Each attack is a raw syscall made by a static helper inside the container, and what the
filter answers is compared with what the kernel answers without it.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from sdcontainer.runtime.launcher.seccomp import native_arch

from .conftest import sdc
from .static_helpers import bind, static_binary

CONTAINERS_COMMON = Path("/usr/share/containers/seccomp.json")
EPERM, ENOSYS, EFAULT, EBADF = errno.EPERM, errno.ENOSYS, errno.EFAULT, errno.EBADF

# Each argument "NR[,A0[,A1...]]" (numbers in C syntax): make that raw syscall and print
# the errno it failed with, or 0.  A clone that succeeds exits in the child.
SYSCALL_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        unsigned long a[7] = {0};
        char *s = argv[i], *end;
        for (int n = 0; n < 7; n++) {
            a[n] = strtoul(s, &end, 0);
            if (*end != ',') break;
            s = end + 1;
        }
        errno = 0;
        long r = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
        int e = errno;
        if (a[0] == SYS_clone && r == 0) _exit(0);
        if (a[0] == SYS_clone && r > 0) waitpid(r, NULL, 0);
        printf("%d\n", r == -1 ? e : 0);
    }
    return 0;
}
"""

# x86_64 numbers.
IO_URING_SETUP = "425,1,0"          # params NULL: EFAULT where io_uring may run
LOOKUP_DCOOKIE = "212,0,0,0"        # not on docker's list; gone from kernels since 6.9
USERFAULTFD = "323,1"               # UFFD_USER_MODE_ONLY: fine for anyone, but unlisted
FUTURE = "1000"                     # a syscall no kernel has yet
PERSONALITY_QUERY = "135,0xffffffff"
PERSONALITY_NO_ASLR = "135,0x0040000"  # ADDR_NO_RANDOMIZE
UNSHARE_USER = "272,0x10000000"     # CLONE_NEWUSER: needs no capability from the kernel
UNSHARE_UTS = "272,0x04000000"
CLONE_UTS = "56,0x04000011"         # CLONE_NEWUTS|SIGCHLD, a fork in a new UTS namespace
FORK = "56,0x11"                    # SIGCHLD: an ordinary fork through clone
CLONE3 = "435,0,0"                  # NULL args: EINVAL once the filter lets it through
BPF = "321,0,0,0"                   # BPF_MAP_CREATE with no attributes: EINVAL
PERF_EVENT_OPEN = "298,0,0,0,0,0"   # attr NULL: EFAULT
SETNS = "308,-1,0"                  # fd -1: EBADF

pytestmark = pytest.mark.skipif(
    native_arch() != "amd64", reason="the helper's syscall numbers are x86_64's")


@pytest.fixture(scope="module")
def helper() -> Path:
    return static_binary("seccomp-syscalls", SYSCALL_C)


def errnos(helper: Path, calls: list[str], *flags: str) -> list[int]:
    """Run the helper in a busybox container with FLAGS; the errno of each call."""
    r = sdc("run", "--rm", *bind(helper), *flags, "busybox", "/helper", *calls)
    assert r.returncode == 0, r.stderr
    return [int(line) for line in r.stdout.split()]


def io_uring_enabled() -> bool:
    try:
        return Path("/proc/sys/kernel/io_uring_disabled").read_text().strip() == "0"
    except OSError:
        return True  # older kernels have no switch


UNCONFINED = ("--security-opt", "seccomp=unconfined")


def test_io_uring_unlisted_and_future_syscalls_are_refused(busybox: str, helper: Path) -> None:
    calls = [IO_URING_SETUP, LOOKUP_DCOOKIE, USERFAULTFD, FUTURE]
    assert errnos(helper, calls) == [EPERM, EPERM, EPERM, EPERM]
    # The kernel itself would have let them through (or not known them): the filter
    # is what refuses.
    bare = errnos(helper, calls, *UNCONFINED)
    assert bare[2:] == [0, ENOSYS]
    if io_uring_enabled():
        assert bare[0] == EFAULT


def test_ordinary_work_still_runs(busybox: str) -> None:
    script = ("mkdir -p /tmp/d && echo hello > /tmp/d/f && cat /tmp/d/f && ls /tmp/d "
              "&& cp /tmp/d/f /tmp/d/g && mv /tmp/d/g /tmp/d/h && rm -r /tmp/d "
              "&& (sleep 0.01 &) && wait && id -u && date +%Y >/dev/null && ps >/dev/null "
              "&& echo done")
    r = sdc("run", "--rm", "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["hello", "f", "0", "done"]


def test_personality_is_filtered_by_its_argument(busybox: str, helper: Path) -> None:
    calls = [PERSONALITY_QUERY, PERSONALITY_NO_ASLR]
    assert errnos(helper, calls) == [0, EPERM]
    assert errnos(helper, calls, *UNCONFINED) == [0, 0]


def test_namespaces_and_mounts_need_cap_sys_admin(busybox: str, helper: Path) -> None:
    calls = [UNSHARE_USER, UNSHARE_UTS, CLONE_UTS, FORK, CLONE3]
    assert errnos(helper, calls) == [EPERM, EPERM, EPERM, 0, ENOSYS]
    # With CAP_SYS_ADMIN the filter steps aside and the kernel decides (and agrees).
    assert errnos(helper, calls, "--cap-add", "SYS_ADMIN") == [0, 0, 0, 0, errno.EINVAL]
    r = sdc("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
            "mkdir -p /mnt && mount -t tmpfs none /mnt && umount /mnt && echo mounted")
    assert r.stdout.strip() == "mounted", r.stderr


@pytest.mark.skipif(not CONTAINERS_COMMON.exists(), reason="containers-common not installed")
def test_containers_common_profile_keeps_its_conditions(busybox: str, helper: Path) -> None:
    profile = ("--security-opt", f"seccomp={CONTAINERS_COMMON}")
    calls = [BPF, PERF_EVENT_OPEN, SETNS, FUTURE]
    # CAP_BPF would let bpf() through the kernel: the profile gives it to SYS_ADMIN only.
    assert errnos(helper, calls, *profile, "--cap-add", "BPF") == [EPERM, EPERM, EPERM, ENOSYS]
    assert errnos(helper, calls, *UNCONFINED, "--cap-add", "BPF") == [
        errno.EINVAL, EFAULT, EBADF, ENOSYS]
    assert errnos(helper, calls, *profile, "--cap-add", "SYS_ADMIN") == [
        errno.EINVAL, EFAULT, EBADF, ENOSYS]


NAMES = {24: "sched_yield", 100: "times", 140: "getpriority", 309: "getcpu", 37: "alarm",
         111: "getpgrp", 124: "getsid"}


def test_profile_conditions_behave_as_docker(busybox: str, helper: Path,
                                             tmp_path: Path) -> None:
    arch = native_arch()

    def deny(nr: int, ret: int, **cond: dict[str, object]) -> dict[str, object]:
        return {"names": [NAMES[nr]], "action": "SCMP_ACT_ERRNO", "errnoRet": ret, **cond}

    rules = [
        deny(24, 90, includes={"arches": [arch]}),            # applies
        deny(100, 91, excludes={"arches": [arch]}),           # skipped here
        deny(140, 92, includes={"minKernel": "3.0"}),         # applies
        deny(309, 93, includes={"minKernel": "999.0"}),       # skipped
        deny(37, 94, excludes={"minKernel": "3.0"}),          # skipped
        deny(111, 95, includes={"caps": ["CAP_SYS_ADMIN"]}),  # only with SYS_ADMIN
        deny(124, 96, excludes={"caps": ["CAP_SYS_ADMIN"]}),  # only without it
    ]
    path = tmp_path / "conditions.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}))
    calls = ["24", "100,0", "140,0,0", "309,0,0,0", "37,0", "111", "124,0"]
    opt = ("--security-opt", f"seccomp={path}")
    assert errnos(helper, calls, *opt) == [90, 0, 92, 0, 0, 0, 96]
    assert errnos(helper, calls, *opt, "--cap-add", "SYS_ADMIN") == [90, 0, 92, 0, 0, 95, 0]


@pytest.mark.parametrize(("profile", "complaint"), [
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action":
      "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]},
     "argument index"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action":
      "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}}]}, "minKernel"),
    ({"defaultAction": "SCMP_ACT_SOMETIMES"}, "unknown action"),
])
def test_malformed_profiles_are_refused(busybox: str, tmp_path: Path, profile: object,
                                        complaint: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(profile))
    r = sdc("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "true")
    assert r.returncode == 125
    assert complaint in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
