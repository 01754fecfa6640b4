"""Healthchecks run by transient systemd timers in the container's slice."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from tests.integration.conftest import VENV_BIN, sdc, systemctl, unit_property, wait_for


def health(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(sdc("inspect", name).stdout)[0]["State"].get("Health", {})  # type: ignore[no-any-return]


def test_healthy_then_unhealthy_with_events(busybox: str, name: str) -> None:
    events = subprocess.Popen([str(VENV_BIN / "sdcontainer"), "events", "--filter-container",
                               name, "--format", "{{.Action}}"], stdout=subprocess.PIPE, text=True)
    try:
        r = sdc("run", "-d", "--name", name, "--health-cmd", "test ! -e /tmp/broken",
                "--health-interval", "1s", "--health-retries", "2", "--health-timeout", "2s",
                busybox, "sleep", "1000")
        assert r.returncode == 0, r.stderr
        timer = f"sdcontainer-healthcheck@{name}.timer"
        assert unit_property(timer, "ActiveState") == "active"
        assert health(name)["Status"] == "starting"
        assert wait_for(lambda: health(name).get("Status") == "healthy", timeout=10)
        service = f"sdcontainer-healthcheck@{name}.service"
        escaped = name.replace("-", "\\x2d")
        assert unit_property(service, "Slice") == f"sdcontainer-{escaped}.slice"
        assert "(healthy)" in sdc("ps", "--format", "{{.Status}}").stdout
        assert sdc("exec", name, "touch", "/tmp/broken").returncode == 0
        assert wait_for(lambda: health(name).get("Status") == "unhealthy", timeout=10)
        h = health(name)
        assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
        assert len(h["Log"]) <= 5
        assert sdc("stop", "-t", "0", name).returncode == 0
        assert wait_for(lambda: unit_property(timer, "ActiveState") in ("inactive", ""))
        assert systemctl("is-active", f"sdcontainer-{name}.scope").stdout.strip() != "active"
    finally:
        # Read up to the last event expected rather than sleeping: it is emitted with the
        # status inspect showed.  The timer ends the stream should it never come.
        killer = threading.Timer(10, events.terminate)
        killer.start()
        seen = []
        for line in events.stdout or []:
            seen.append(line)
            if "health_status: unhealthy" in line:
                break
        killer.cancel()
        events.terminate()
        out = "".join(seen) + events.communicate(timeout=5)[0]
    assert "health_status: healthy" in out and "health_status: unhealthy" in out


def test_unhealthy_action_kill(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--name", name, "--health-cmd", "false", "--health-interval", "1s",
            "--health-retries", "1", "--health-on-failure", "kill", busybox, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: json.loads(sdc("inspect", name).stdout)[0]["State"]["Status"]
                    == "exited", timeout=10)
    info = json.loads(sdc("inspect", name).stdout)[0]
    assert info["State"]["ExitCode"] == 137
    assert info["State"]["Health"]["Status"] == "unhealthy"
    timer = f"sdcontainer-healthcheck@{name}.timer"
    assert wait_for(lambda: unit_property(timer, "ActiveState") in ("inactive", ""))


def test_healthcheck_run_verb_and_timeout(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--name", name, "--health-cmd", "sleep 5", "--health-interval", "1h",
            "--health-timeout", "1s", busybox, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    start = time.monotonic()
    r = sdc("healthcheck", "run", name)
    assert r.returncode == 1
    assert time.monotonic() - start < 4
    assert "exceeded timeout" in health(name)["Log"][-1]["Output"]


def test_no_healthcheck_no_timer(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    assert unit_property(f"sdcontainer-healthcheck@{name}.timer", "LoadState") != "loaded"
    assert health(name) == {}
    r = sdc("healthcheck", "run", name)
    assert r.returncode == 1 and "no healthcheck" in r.stderr
