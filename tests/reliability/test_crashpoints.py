"""Named crash points (sdcontainer/util/crashpoints.py): the daemon dies right after a
given step, systemd restarts it, and every container is fully there or fully gone."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.integration.conftest import busybox_rootfs, sdc, systemctl, wait_for

from .helpers import (
    DROPIN,
    SERVICE,
    STATE,
    api_up,
    arm,
    check_invariants,
    inspect,
    main_pid,
    reset_daemon,
    wait_restarted,
)

START_STEPS = ["ip-allocated", "netns-made", "veth-up", "nft-rule-added", "monitor-spawned",
               "scope-created", "workload-started"]


def check_startable(name: str) -> None:
    """NAME can be started (it is whole) and removed (leaving nothing)."""
    r = sdc("start", name)
    assert r.returncode == 0, r.stderr
    assert inspect(name)["State"]["Running"]  # type: ignore[index]
    check_invariants()
    assert sdc("rm", "-f", name).returncode == 0
    check_invariants()


@pytest.mark.parametrize("step", START_STEPS)
def test_crash_during_start(busybox: str, name: str, healthy_daemon: None, step: str) -> None:
    pid = arm(step)
    r = sdc("run", "-d", "--name", name, "-p", "18123:80", busybox, "sleep", "1000")
    assert r.returncode != 0, f"{step} was not reached"
    wait_restarted(pid)
    c = inspect(name)
    assert c is not None, "the record written at create is lost"
    assert not c["State"]["Running"]
    if step == "monitor-spawned":  # systemd killed it with the daemon: never started
        assert c["State"]["Status"] == "created", c["State"]
    if step in ("scope-created", "workload-started"):
        assert c["State"]["Status"] == "exited" and c["State"]["ExitCode"] == 255, c["State"]
    check_invariants()
    check_startable(name)


def test_crash_after_record_written(busybox: str, name: str, healthy_daemon: None) -> None:
    pid = arm("record-written")
    assert sdc("create", "--name", name, busybox, "sleep", "1000").returncode != 0
    wait_restarted(pid)
    c = inspect(name)
    assert c is not None and c["State"]["Status"] == "created"
    check_invariants()
    check_startable(name)


def test_crash_during_rm(busybox: str, name: str, healthy_daemon: None) -> None:
    pid = arm("rm-network-down")
    assert sdc("run", "-d", "--name", name, "-p", "18124:80", busybox, "sleep", "1000"
               ).returncode == 0
    assert sdc("rm", "-f", name).returncode != 0
    wait_restarted(pid)
    c = inspect(name)
    assert c is None or not c["State"]["Running"]
    check_invariants()
    if c is not None:
        assert sdc("rm", name).returncode == 0
    assert inspect(name) is None
    check_invariants()


def test_crash_with_layer_unpacked(daemon: None, healthy_daemon: None,
                                   tmp_path: os.PathLike[str]) -> None:
    tar = busybox_rootfs(tmp_path)  # type: ignore[arg-type]
    sdc("rmi", "-f", "crashimg")
    pid = arm("layer-unpacked")
    assert sdc("import", str(tar), "crashimg").returncode != 0
    assert list((STATE / "images" / "tmp").iterdir()), "the crash left nothing to clean up"
    wait_restarted(pid)
    check_invariants()
    assert sdc("import", str(tar), "crashimg").returncode == 0
    assert sdc("run", "--rm", "crashimg", "true").returncode == 0
    sdc("rmi", "-f", "crashimg")


def test_running_record_without_process_becomes_255(busybox: str, name: str,
                                                    healthy_daemon: None) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    pid = main_pid()
    os.kill(pid, signal.SIGKILL)
    # The whole scope, monitor included, dies before it can record an exit status.
    systemctl("kill", "--signal=KILL", f"sdcontainer-{name}.scope")
    wait_restarted(pid)
    st = inspect(name)["State"]  # type: ignore[index]
    assert st["Status"] == "exited" and st["ExitCode"] == 255, st
    check_invariants()


def test_rm_container_exited_while_daemon_dead(busybox: str, name: str,
                                               healthy_daemon: None) -> None:
    assert sdc("run", "-d", "--rm", "--name", name, busybox, "sh", "-c",
               "trap 'exit 0' TERM; while :; do sleep 0.1; done").returncode == 0
    pid = main_pid()
    os.kill(pid, signal.SIGKILL)
    systemctl("stop", f"sdcontainer-{name}.scope", check=True)
    wait_restarted(pid)
    assert wait_for(lambda: inspect(name) is None, 10)
    check_invariants()


def monitor_pid(name: str) -> int:
    cid = inspect(name)["Id"]  # type: ignore[index]
    return int(json.loads((STATE / "containers" / cid / "container.json").read_text())
               ["state"]["monitor_pid"])


def test_monitor_killed_rm_f_works(busybox: str, name: str, healthy_daemon: None) -> None:
    assert sdc("run", "-d", "--name", name, "-p", "18125:80", busybox, "sleep", "1000"
               ).returncode == 0
    workload = inspect(name)["State"]["Pid"]  # type: ignore[index]
    os.kill(monitor_pid(name), signal.SIGKILL)
    assert wait_for(lambda: not os.path.exists(f"/proc/{workload}"), 15)
    assert sdc("rm", "-f", name).returncode == 0
    assert inspect(name) is None
    check_invariants()


def test_monitor_killed_while_daemon_dead(busybox: str, name: str, healthy_daemon: None) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    workload = inspect(name)["State"]["Pid"]  # type: ignore[index]
    mon = monitor_pid(name)
    pid = main_pid()
    os.kill(pid, signal.SIGKILL)
    os.kill(mon, signal.SIGKILL)
    wait_restarted(pid)
    assert wait_for(lambda: not os.path.exists(f"/proc/{workload}"), 15), \
        "the workload lives on without its monitor"
    assert sdc("rm", "-f", name).returncode == 0
    check_invariants()


def test_watchdog(daemon: None, healthy_daemon: None) -> None:
    out = systemctl("show", "-p", "WatchdogUSec", "-p", "Restart", SERVICE).stdout
    assert "Restart=on-failure" in out and "WatchdogUSec=0\n" not in out, out
    # A short watchdog for this test: the pings keep a live daemon running...
    dropin = DROPIN.with_name("watchdog.conf")
    dropin.write_text("[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n")
    try:
        systemctl("daemon-reload", check=True)
        systemctl("restart", SERVICE, check=True)
        assert wait_for(api_up, 30)
        pid = main_pid()
        time.sleep(6)
        assert main_pid() == pid and api_up()
        # ...and a wedged one (stopped: its loop cannot ping) is restarted.
        os.kill(pid, signal.SIGSTOP)
        assert wait_for(lambda: main_pid() not in (0, pid), 20), \
            "the watchdog did not restart a wedged daemon"
    finally:
        dropin.unlink()
        systemctl("daemon-reload", check=True)
    reset_daemon()
    systemctl("restart", SERVICE, check=True)
    assert wait_for(api_up, 30)
