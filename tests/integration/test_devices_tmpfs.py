"""--device PERMS as the device cgroup enforces them, and mounts refused under /dev.

PERMS (r, w, m in any combination) go to the scope's DeviceAllow=: they are checked
by the kernel when the container opens (r, w) or creates (m) a node of that device,
whatever the node's file mode says.  The device used must not be one of the default
nodes (null, zero, ...), which are always allowed rwm: the cgroup knows numbers,
not paths.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from .conftest import sdc

# Misc devices that open for reading and for writing without side effects (a tun
# fd does nothing until TUNSETIFF; loop-control until an ioctl).
CANDIDATES = [("/dev/net/tun", "tun"), ("/dev/loop-control", "loop-control")]
# `true` (not `exec` or `:`): a failed redirection on a special builtin ends the shell.
OPEN_BOTH = ("true </dev/mydev && echo read-open; "
             "true >/dev/mydev && echo write-open; true")


@pytest.fixture(scope="module")
def device() -> str:
    """A host char device outside the default set whose driver is present."""
    for path, misc in CANDIDATES:
        if os.path.exists(f"/sys/class/misc/{misc}") and os.path.exists(path) and \
                stat.S_ISCHR(os.stat(path).st_mode):
            return path
    pytest.skip("no tun or loop-control device on this host")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return sdc("run", "--rm", *args)


def test_device_read_only(busybox: str, device: str) -> None:
    r = run("--device", f"{device}:/dev/mydev:r", busybox, "sh", "-c", OPEN_BOTH)
    assert r.returncode == 0, r.stderr
    assert "read-open" in r.stdout and "write-open" not in r.stdout
    assert "Operation not permitted" in r.stderr


def test_device_read_write(busybox: str, device: str) -> None:
    rdev = os.stat(device).st_rdev
    mknod = f"busybox mknod /tmp/n c {os.major(rdev)} {os.minor(rdev)} && echo mknod-ok; true"
    r = run("--device", f"{device}:/dev/mydev:rw", busybox, "sh", "-c",
            f"{OPEN_BOTH}; {mknod}")
    assert r.returncode == 0, r.stderr
    assert "read-open" in r.stdout and "write-open" in r.stdout
    # Without m the container cannot make a node of that device itself.
    assert "mknod-ok" not in r.stdout


def test_device_rwm(busybox: str, device: str) -> None:
    rdev = os.stat(device).st_rdev
    r = run("--device", f"{device}:/dev/mydev:rwm", busybox, "sh", "-c",
            f"{OPEN_BOTH}; busybox mknod /tmp/n c {os.major(rdev)} {os.minor(rdev)} "
            "&& true </tmp/n && echo mknod-ok")
    assert r.returncode == 0, r.stderr
    assert "read-open" in r.stdout and "write-open" in r.stdout and "mknod-ok" in r.stdout


def test_device_node_is_the_host_device(busybox: str, device: str) -> None:
    rdev = os.stat(device).st_rdev
    r = run("--device", f"{device}:/dev/mydev:r", busybox, "stat", "-c", "%F %t:%T",
            "/dev/mydev")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["character", "special", "file",
                                f"{os.major(rdev):x}:{os.minor(rdev):x}"]


@pytest.mark.parametrize("flags", [
    ["--tmpfs", "/dev/x"],
    ["--tmpfs", "/dev/shm"],
    ["--tmpfs", "/tmp/../dev/x"],
    ["-v", "/tmp:/dev/x"],
    ["-v", "/tmp:/dev/x:ro"],
    ["--mount", "type=tmpfs,target=/dev/x"],
])
def test_mounts_under_dev_refused(busybox: str, name: str, flags: list[str]) -> None:
    r = sdc("run", "--name", name, *flags, busybox, "true")
    assert r.returncode == 125, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot mount over" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    listed = sdc("ps", "-a", "--format", "{{.Names}}")
    assert listed.returncode == 0, listed.stderr
    assert name not in listed.stdout.split()
