"""Restart policies at their edges: a container waiting to restart, a policy changed
while running, and a forced removal racing the exit."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.api.apiutil import api, docker
from tests.integration.conftest import sdc, sh, systemctl, wait_for


def inspect(name: str) -> dict[str, Any]:
    r = sdc("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]  # type: ignore[no-any-return]


def units_of(name: str) -> str:
    """Every unit, loaded or not, whose name mentions container NAME."""
    return systemctl("list-units", "--all", "--plain", "--no-legend", f"*{name}*").stdout


def test_restarting_container_needs_force(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--restart", "always", "--name", name, busybox, "true")
    assert r.returncode == 0, r.stderr
    # After five restarts the back-off is 3.2 s: a wide window to catch it waiting.
    assert wait_for(lambda: inspect(name)["RestartCount"] >= 5, timeout=30)
    assert wait_for(lambda: inspect(name)["State"]["Restarting"], timeout=10)
    status, body, _ = api("DELETE", f"/containers/{name}")
    assert status == 409, body
    assert body["message"].startswith("You cannot remove a restarting container ")
    assert body["message"].endswith("Stop the container before attempting removal or "
                                    "force remove")
    status, body, _ = api("DELETE", f"/containers/{name}?force=1")
    assert status == 204, body
    assert sdc("inspect", name).returncode != 0
    assert wait_for(lambda: units_of(name) == "")


def test_update_restart_policy_applies_to_next_exit(busybox: str, name: str) -> None:
    # Exits 1 once /tmp/go exists: at once after a restart (the file system persists).
    r = sdc("run", "-d", "--name", name, busybox, "sh", "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 1")
    assert r.returncode == 0, r.stderr
    r = sdc("update", "--restart", "on-failure:1", name)
    assert r.returncode == 0, r.stderr
    policy = inspect(name)["HostConfig"]["RestartPolicy"]
    assert policy == {"Name": "on-failure", "MaximumRetryCount": 1}
    # The workload's exit may end the exec before it reports (then 137): not checked.
    sdc("exec", name, "touch", "/tmp/go")

    def settled() -> bool:
        info = inspect(name)
        return (info["RestartCount"] == 1 and info["State"]["Status"] == "exited"
                and not info["State"]["Restarting"])

    assert wait_for(settled, timeout=20)
    info = inspect(name)
    assert info["State"]["ExitCode"] == 1
    # The one restart happened: its `restart` event is in the log.
    r = docker("events", "--since", "10m", "--until", str(int(time.time()) + 1),
               "--filter", f"container={name}",
               "--format", "{{.Action}}")
    assert r.stdout.split().count("restart") == 1, r.stdout


def test_forced_delete_racing_the_exit(busybox: str, name: str) -> None:
    since = int(time.time()) - 1
    names = [f"{name}-{i}" for i in range(10)]
    statuses: list[int] = []
    waits: dict[str, Any] = {}
    try:
        for n in names:
            status, body, _ = api("POST", f"/containers/create?name={n}",
                                  {"Image": busybox, "Cmd": ["true"]})
            assert status == 201, body

            def wait(n: str = n) -> None:
                waits[n] = api("POST", f"/containers/{n}/wait")[0]

            assert api("POST", f"/containers/{n}/start")[0] == 204
            # Arriving while it runs, after its exit or after its removal: answered.
            waiter = threading.Thread(target=wait)
            waiter.start()
            while True:
                status = api("DELETE", f"/containers/{n}?force=1")[0]
                statuses.append(status)
                if status == 404:
                    break
            waiter.join(30)
            assert not waiter.is_alive(), f"wait on {n} was never answered"
    finally:
        for n in names:
            sdc("rm", "-f", n)
    assert set(statuses) <= {204, 404}, statuses
    assert set(waits.values()) <= {200, 404}, waits
    r = docker("events", "--since", str(since), "--until", str(int(time.time()) + 1),
               "--format", "{{.Actor.Attributes.name}} {{.Action}}")
    seen = set(r.stdout.splitlines())
    for n in names:
        assert {f"{n} die", f"{n} destroy"} <= seen, (n, r.stdout)
    journal = sh("journalctl", "-u", "sdcontainerd", "--since", f"@{since}", "--no-pager").stdout
    assert "Traceback" not in journal, journal


def test_systemctl_stop_is_a_stop_for_restart_policies(busybox: str, name: str) -> None:
    """`systemctl stop` on the scope is the admin's `docker stop`: `always` does not bring
    the container back (docker's first restart comes 100 ms after the exit)."""
    r = sdc("run", "-d", "--restart", "always", "--name", name, busybox, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    since = inspect(name)["State"]["StartedAt"]
    systemctl("stop", f"sdcontainer-{name}.scope", check=True)
    assert wait_for(lambda: inspect(name)["State"]["Status"] == "exited", timeout=15)
    assert inspect(name)["State"]["Restarting"] is False
    # Every event of the container from its start to two seconds past the stop.
    until = str(time.time() + 2)
    r = sdc("events", "--since", since, "--until", until, "--filter", f"container={name}",
            "--format", "{{.Action}}", timeout=30)
    actions = r.stdout.split()
    assert actions[-3:] == ["kill", "die", "stop"], actions
    assert inspect(name)["State"]["Status"] == "exited" and inspect(name)["RestartCount"] == 0
    # An explicit start runs it again, with its policy in force.
    assert sdc("start", name).returncode == 0
    assert inspect(name)["State"]["Running"] is True
