"""Security issue 13, item 5: nothing a container writes lands on the host's /run.

/etc/hosts, /etc/hostname and /etc/resolv.conf are read-write binds; they are
files in the container's directory on the state disk (as docker keeps them),
so filling them fills that disk, never the tmpfs systemd needs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import sdc, sh, systemctl, wait_for

STATE = Path("/var/lib/sdcontainer")
RUN = Path("/run")
MiB = 1 << 20


def inspect(name: str) -> dict[str, object]:
    r = sdc("inspect", name)
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)[0]
    return data


def used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def mount_devices(pid: int) -> list[tuple[str, str]]:
    """(major:minor, mount point) of every mount in PID's mount namespace."""
    out = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        out.append((fields[2], fields[4]))
    return out


def devno(path: Path) -> str:
    st = os.stat(path)
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


@pytest.fixture
def small_run() -> Iterator[int]:
    """The box's /run (a tmpfs) shrunk to 32 MiB of free space; its free bytes."""
    assert sh("findmnt", "-n", "-o", "FSTYPE", str(RUN)).stdout.strip() == "tmpfs"
    old_size = sh("findmnt", "-n", "-o", "SIZE", "-b", str(RUN)).stdout.strip()
    sh("mount", "-o", f"remount,size={used(RUN) + 32 * MiB}", str(RUN))
    try:
        st = os.statvfs(RUN)
        yield st.f_bavail * st.f_frsize
    finally:
        sh("mount", "-o", f"remount,size={old_size}", str(RUN))


@pytest.mark.parametrize("mode", ["bridge", "none", "host"])
def test_no_container_mount_is_on_run(busybox: str, name: str, mode: str) -> None:
    assert sdc("run", "-d", "--name", name, "--network", mode, busybox,
               "sleep", "1000").returncode == 0
    c = inspect(name)
    pid = c["State"]["Pid"]  # type: ignore[index]
    cid = str(c["Id"])
    run_dev = devno(RUN)
    on_run = [m for dev, m in mount_devices(pid) if dev == run_dev]
    assert not on_run, f"bound into the container from the host's /run: {on_run}"
    for f in ("hosts", "resolv.conf", "hostname"):
        assert (STATE / "containers" / cid / f).is_file(), f
    # Inside, /etc/hosts is the state disk's file.
    r = sdc("run", "--rm", "--network", mode, busybox, "stat", "-c", "%d", "/etc/hosts")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == os.stat(STATE).st_dev
    assert sdc("rm", "-f", name).returncode == 0
    assert not (STATE / "containers" / cid).exists()
    assert not (RUN / "sdcontainer" / "containers" / cid).exists()


def test_filling_etc_hosts_does_not_fill_run(busybox: str, name: str, small_run: int) -> None:
    run_before, state_before = used(RUN), used(STATE)
    count = small_run // MiB + 16  # more than /run has free
    assert sdc("run", "-d", "--name", name, busybox, "sh", "-c",
               f"dd if=/dev/zero of=/etc/hosts bs={MiB} count={count}; sleep 1000"
               ).returncode == 0
    cid = str(inspect(name)["Id"])
    hosts = STATE / "containers" / cid / "hosts"
    assert wait_for(lambda: hosts.stat().st_size == count * MiB, 60), hosts.stat()
    assert used(STATE) - state_before >= count * MiB
    assert used(RUN) - run_before < 4 * MiB, "the container's /etc/hosts went to /run"
    # systemd and new containers are unaffected.
    assert systemctl("daemon-reload").returncode == 0
    assert sdc("run", "--rm", busybox, "true", timeout=60).returncode == 0
    # Removal frees the state disk again and leaves nothing.
    assert sdc("rm", "-f", name).returncode == 0
    assert not (STATE / "containers" / cid).exists()
    assert used(STATE) - state_before < count * MiB // 2
