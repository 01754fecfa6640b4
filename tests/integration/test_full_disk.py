"""Security issue 13, item 8: a full state disk never blocks removal or loses an exit status.

The box's /var/lib/sdcontainer is a tmpfs; each test shrinks it to a few MiB
more than it holds, and a container fills it from inside (its upper layer),
then exits with its own status, as the attack did.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import VENV_BIN, sdc, sh, systemctl, unit_property, wait_for

STATE = Path("/var/lib/sdcontainer")
RUN = Path("/run/sdcontainer")
FILL = "dd if=/dev/zero of=/fill bs=65536 2>/dev/null"
# A record bigger than what the exit's network teardown frees (the name files, the
# endpoint and IPAM entries, a page each): writing it needs room the disk has not.
BIG = ("-e", "BIG=" + "x" * (64 << 10))


def free_bytes() -> int:
    st = os.statvfs(STATE)
    return st.f_bavail * st.f_frsize


def disk_full() -> bool:
    return free_bytes() < 65536


@pytest.fixture
def small_state() -> Iterator[None]:
    """The state disk shrunk to 8 MiB more than it holds, restored afterwards."""
    mnt = str(STATE)
    assert sh("findmnt", "-n", "-o", "FSTYPE", mnt).stdout.strip() == "tmpfs"
    old_size = sh("findmnt", "-n", "-o", "SIZE", "-b", mnt).stdout.strip()
    used = int(sh("df", "-B1", "--output=used", mnt).stdout.split()[-1])
    sh("mount", "-o", f"remount,size={used + (8 << 20)}", mnt)
    try:
        yield
    finally:
        sh("mount", "-o", f"remount,size={old_size}", mnt)


def inspect(name: str) -> dict[str, object] | None:
    r = sdc("inspect", name)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None  # type: ignore[no-any-return]


def state(name: str) -> dict[str, object]:
    c = inspect(name)
    assert c is not None, f"no container {name}"
    return c["State"]  # type: ignore[return-value]


def veths_of(cid: str) -> list[str]:
    found = []
    for line in sh("ip", "-o", "link", "show").stdout.splitlines():
        m = re.match(r"\d+: (sdcv[0-9a-z]+)[@:]", line)
        if m and Path(f"/sys/class/net/{m.group(1)}/ifalias").read_text().strip() == cid:
            found.append(m.group(1))
    return found


def assert_gone(name: str, cid: str) -> None:
    """Nothing of container CID is left: record, runtime dir, veth, IPAM, endpoint, scope."""
    assert inspect(name) is None
    assert not (STATE / "containers" / cid).exists()
    assert not (RUN / "containers" / cid).exists()
    assert not veths_of(cid)
    assert not list((STATE / "networks" / "ipam").glob(f"*/{cid}.json"))
    assert all(cid not in f.read_text()
               for f in (STATE / "networks" / "ipam").glob("*.json")), "IPAM entry left"
    assert not (STATE / "networks" / "endpoints" / f"{cid}.json").exists()
    assert unit_property(f"sdcontainer-{name}.scope", "ActiveState") in ("inactive", "")


def on_disk(cid: str) -> dict[str, object]:
    """The container's record as stored."""
    record = json.loads((STATE / "containers" / cid / "container.json").read_text())
    return record["state"]  # type: ignore[no-any-return]


def exit_file(cid: str) -> Path:
    return RUN / "containers" / cid / "exit.json"


def run_filler(name: str, busybox: str, code: int) -> str:
    """A container that fills the disk and exits with CODE; its id once it has exited."""
    assert sdc("run", "-d", "--name", name, *BIG, busybox, "sh", "-c", f"{FILL}; exit {code}"
               ).returncode == 0
    cid = str(inspect(name)["Id"])  # type: ignore[index]
    assert wait_for(lambda: state(name)["Status"] == "exited", 60), state(name)
    assert disk_full()
    return cid


def test_exit_status_kept_and_rm_with_a_full_disk(busybox: str, name: str,
                                                  small_state: None) -> None:
    cid = run_filler(name, busybox, 3)
    assert state(name)["ExitCode"] == 3, state(name)
    r = sdc("wait", name, timeout=30)
    assert (r.returncode, r.stdout.strip()) == (0, "3"), r.stderr
    # The record could not be written: the status is kept on /run until it can.
    assert on_disk(cid)["status"] != "exited"
    assert json.loads(exit_file(cid).read_text())["exit_code"] == 3
    r = sdc("rm", "-f", name, timeout=30)
    assert r.returncode == 0, r.stderr
    assert_gone(name, cid)
    assert not disk_full()


def test_exit_status_recorded_once_there_is_room(busybox: str, name: str,
                                                 small_state: None) -> None:
    cid = run_filler(name, busybox, 3)
    assert on_disk(cid)["status"] != "exited"
    size = int(sh("findmnt", "-n", "-o", "SIZE", "-b", str(STATE)).stdout.strip())
    sh("mount", "-o", f"remount,size={size + (1 << 20)}", str(STATE))
    assert wait_for(lambda: on_disk(cid)["status"] == "exited", 30), on_disk(cid)
    assert on_disk(cid)["exit_code"] == 3
    assert wait_for(lambda: not exit_file(cid).exists(), 5)


def test_rm_force_running_filler(busybox: str, name: str, small_state: None) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sh", "-c", f"{FILL}; sleep 1000"
               ).returncode == 0
    cid = str(inspect(name)["Id"])  # type: ignore[index]
    assert wait_for(disk_full, 60)
    assert state(name)["Running"] is True
    r = sdc("rm", "-f", name, timeout=30)
    assert r.returncode == 0, r.stderr
    assert_gone(name, cid)


@pytest.mark.parametrize("rm", [False, True])
def test_attached_run_returns_the_code(busybox: str, name: str, small_state: None,
                                       rm: bool) -> None:
    r = sdc("run", *(["--rm"] if rm else []), "--name", name, busybox, "sh", "-c",
            f"{FILL}; echo filled; exit 3", timeout=60)
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == "filled"
    if rm:
        assert inspect(name) is None
    else:
        assert state(name)["ExitCode"] == 3


def start_attached(name: str, busybox: str, script: str) -> subprocess.Popen[str]:
    """An attached `run` of SCRIPT, returned once SCRIPT has printed 'filled' through it
    (so the run is streaming, its signal proxy in place) and the disk is full."""
    p = subprocess.Popen([str(VENV_BIN / "sdcontainer"), "run", "--name", name, busybox,
                          "sh", "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], 60)
    assert ready and p.stdout.readline().strip() == "filled", "no output from the container"
    assert disk_full() and state(name)["Running"] is True
    return p


def test_attached_run_forwards_sigterm(busybox: str, name: str, small_state: None) -> None:
    p = start_attached(name, busybox, f"trap 'exit 7' TERM; {FILL}; echo filled; "
                                      "while true; do sleep 0.2; done")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 7, (out, err)
    assert state(name)["ExitCode"] == 7


def test_attached_run_leaves_on_second_sigterm(busybox: str, name: str,
                                               small_state: None) -> None:
    # PID 1 of a pid namespace ignores SIGTERM it has no handler for: the
    # forwarded signal does nothing, and a second one makes `run` leave.
    p = start_attached(name, busybox, f"{FILL}; echo filled; sleep 1000")
    p.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=1)  # the forwarded signal alone does not end `run`
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGTERM, (out, err)
    assert "Traceback" not in err, err
    assert state(name)["Running"] is True
    r = sdc("rm", "-f", name, timeout=30)
    assert r.returncode == 0, r.stderr


def test_exit_while_daemon_down_with_a_full_disk(busybox: str, name: str,
                                                 small_state: None) -> None:
    assert sdc("run", "-d", "--name", name, *BIG, busybox, "sh", "-c",
               f"while [ ! -e /go ]; do sleep 0.1; done; {FILL}; exit 5").returncode == 0
    cid = str(inspect(name)["Id"])  # type: ignore[index]
    systemctl("stop", "sdcontainerd.service", check=True)
    try:
        Path(f"/proc/{state_pid(cid)}/root/go").touch()
        assert wait_for(lambda: unit_property(f"sdcontainer-{name}.scope", "ActiveState")
                        in ("inactive", ""), 60)
        assert disk_full()
    finally:
        systemctl("start", "sdcontainerd.service", check=True)
    assert wait_for(lambda: sdc("ps").returncode == 0, 30)
    st = state(name)
    assert (st["Status"], st["ExitCode"]) == ("exited", 5), st
    assert json.loads(exit_file(cid).read_text())["exit_code"] == 5
    r = sdc("rm", "-f", name, timeout=30)
    assert r.returncode == 0, r.stderr
    assert_gone(name, cid)


def state_pid(cid: str) -> int:
    """The workload's pid from the record on disk (the daemon is down)."""
    record = json.loads((STATE / "containers" / cid / "container.json").read_text())
    return int(record["state"]["pid"])
