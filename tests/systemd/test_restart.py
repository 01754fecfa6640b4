"""Restart policies: counts, back-off, explicit stop, daemon restart."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.integration.conftest import sdc, systemctl, wait_for


def inspect(name: str) -> dict:  # type: ignore[type-arg]
    r = sdc("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]  # type: ignore[no-any-return]


def test_on_failure_max_retries(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "on-failure:3", "--name", name, busybox,
            "sh", "-c", "date +%s.%N >> /tmp/starts; exit 3")
    assert r.returncode == 0, r.stderr
    # 3 restarts with back-off 0.1 + 0.2 + 0.4 s, then it stays exited.
    assert wait_for(lambda: inspect(name)["RestartCount"] == 3
                    and inspect(name)["State"]["Status"] == "exited", timeout=20)
    time.sleep(1.5)
    info = inspect(name)
    assert info["RestartCount"] == 3
    assert info["State"]["ExitCode"] == 3
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_on_failure_not_on_success(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "on-failure", "--name", name, busybox, "true")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: inspect(name)["State"]["Status"] == "exited")
    time.sleep(1)
    assert inspect(name)["RestartCount"] == 0


def test_always_backoff_doubles(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "always", "--name", name, busybox, "true")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: inspect(name)["RestartCount"] >= 5, timeout=20)
    # Restarts come after 0.1, 0.2, 0.4, 0.8, 1.6 s: five in no less than ~3 s.
    r = sdc("stop", name)
    count = inspect(name)["RestartCount"]
    time.sleep(2)
    assert inspect(name)["RestartCount"] == count, "an explicit stop ends restarting"
    assert inspect(name)["State"]["Status"] == "exited"


def test_backoff_timing(busybox: str, name: str) -> None:
    start = time.monotonic()
    r = sdc("run", "-d", "--restart", "on-failure:4", "--name", name, busybox, "false")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: inspect(name)["RestartCount"] == 4
                    and inspect(name)["State"]["Status"] == "exited", timeout=20)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.1 + 0.2 + 0.4 + 0.8, elapsed


def test_stop_disables_restart(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "always", "--name", name, busybox, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    assert sdc("stop", "-t", "1", name).returncode == 0
    time.sleep(1)
    info = inspect(name)
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == 0


def test_kill_restarts_always(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "always", "--name", name, busybox, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    pid = inspect(name)["State"]["Pid"]
    # Killed behind our back, through systemd: the daemon sees the exit and restarts.
    systemctl("kill", "-s", "KILL", f"sdcontainer-{name}.scope", check=True)
    assert wait_for(lambda: inspect(name)["RestartCount"] == 1
                    and inspect(name)["State"]["Running"]
                    and inspect(name)["State"]["Pid"] != pid, timeout=10)
    assert systemctl("is-active", f"sdcontainer-{name}.scope").stdout.strip() == "active"


def test_explicit_start_resets_count(busybox: str, name: str, tmp_path: Path) -> None:
    # Every run appends a line.  on-failure:1 allows one restart per explicit start:
    # with the count reset, `start` brings two more runs; with the old count kept
    # (1, the limit), only one.  RestartCount alone is 1 either way.
    runs = tmp_path / "runs"
    runs.touch()
    r = sdc("run", "-d", "--restart", "on-failure:1", "--name", name, "-v", f"{tmp_path}:/data",
            busybox, "sh", "-c", "echo run >> /data/runs; exit 1")
    assert r.returncode == 0, r.stderr

    def settled(n: int) -> bool:
        info = inspect(name)
        return (len(runs.read_text().splitlines()) == n and info["RestartCount"] == 1
                and info["State"]["Status"] == "exited" and not info["State"]["Restarting"])

    assert wait_for(lambda: settled(2), timeout=10), runs.read_text()
    assert sdc("start", name).returncode == 0
    assert wait_for(lambda: settled(4), timeout=10), (runs.read_text(), inspect(name)["State"])


def test_invalid_policies(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "sometimes", "--name", name, busybox, "true")
    assert r.returncode == 125 and "invalid restart policy" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = sdc("run", "-d", "--rm", "--restart", "always", "--name", name, busybox, "true")
    assert r.returncode == 125 and "--rm" in r.stderr
    r = sdc("run", "-d", "--restart", "always:3", "--name", name, busybox, "true")
    assert r.returncode == 125 and "retry count" in r.stderr


def test_daemon_restart_brings_back_always(busybox: str, name: str) -> None:
    other = f"{name}-stopped"
    try:
        assert sdc("run", "-d", "--restart", "always", "--name", name, busybox,
                   "sleep", "1000").returncode == 0
        assert sdc("run", "-d", "--restart", "unless-stopped", "--name", other, busybox,
                   "sleep", "1000").returncode == 0
        assert sdc("stop", "-t", "0", other).returncode == 0
        systemctl("stop", "sdcontainerd.service", check=True)
        # The container ends while the daemon is down (a reboot ends them all).
        systemctl("stop", f"sdcontainer-{name}.scope", check=True)
        systemctl("start", "sdcontainerd.service", check=True)
        assert wait_for(lambda: inspect(name)["State"]["Running"], timeout=10)
        time.sleep(0.5)
        assert inspect(other)["State"]["Status"] == "exited", "unless-stopped stays stopped"
    finally:
        sdc("rm", "-f", other)
