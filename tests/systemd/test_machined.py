"""systemd-machined sees running containers, acts on them, and forgets them."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import sdc, sh, systemctl, wait_for


def machines() -> list[str]:
    r = sh("machinectl", "list", "--no-legend", "--no-pager", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def state(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(sdc("inspect", name).stdout)[0]["State"]  # type: ignore[no-any-return]


def test_registered_while_running(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    assert wait_for(lambda: name in machines())
    status = sh("machinectl", "status", name, "--no-pager").stdout
    pid = state(name)["Pid"]
    assert f"Leader: {pid}" in status
    assert "Service: sdcontainer; class container" in status
    assert f"sdcontainer-{name}.scope" in status
    assert sh("machinectl", "show", name, "-p", "Class", "--value").stdout.strip() == "container"
    assert sdc("stop", "-t", "1", name).returncode == 0
    assert wait_for(lambda: name not in machines())


def test_machinectl_terminate_is_recorded(busybox: str, name: str) -> None:
    # --init: a bare `sleep` as PID 1 would ignore SIGTERM until the stop timeout.
    assert sdc("run", "-d", "--init", "--name", name, busybox, "sleep", "1000").returncode == 0
    assert wait_for(lambda: name in machines())
    sh("machinectl", "terminate", name)
    assert wait_for(lambda: state(name)["Status"] == "exited")
    assert state(name)["ExitCode"] == 143  # the scope's stop signal, SIGTERM
    assert systemctl("is-active", f"sdcontainer-{name}.scope").stdout.strip() != "active"
    assert wait_for(lambda: name not in machines())


def test_machinectl_kill(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    assert wait_for(lambda: name in machines())
    sh("machinectl", "kill", "-s", "KILL", name)
    assert wait_for(lambda: state(name)["Status"] == "exited")
    assert state(name)["ExitCode"] == 137
    assert wait_for(lambda: name not in machines())


def test_generated_names_are_registered(busybox: str) -> None:
    r = sdc("run", "-d", busybox, "sleep", "100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    name = json.loads(sdc("inspect", cid).stdout)[0]["Name"].lstrip("/")
    try:
        assert "_" in name
        machine = name.replace("_", "-")
        assert wait_for(lambda: machine in sh("machinectl", "list", "--no-legend",
                                               check=False).stdout)
    finally:
        sdc("rm", "-f", cid)


def test_short_lived_containers_never_register_the_daemon(busybox: str) -> None:
    # A container that is over before its registration runs has no leader any more; asking
    # machined with leader 0 would register (and later stop) sdcontainerd.service itself.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: sdc("run", "--rm", busybox, "true"), range(20)))
    assert all(r.returncode == 0 for r in results), \
        [(r.returncode, r.stdout, r.stderr) for r in results][:3]
    time.sleep(1)
    assert sh("systemctl", "is-active", "sdcontainerd.service", check=False).stdout.strip() \
        == "active"
    assert "sdcontainerd" not in sh("machinectl", "list", "--no-legend", check=False).stdout
