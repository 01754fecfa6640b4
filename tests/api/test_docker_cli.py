"""The real docker CLI drives sdcontainerd over its unix socket, unmodified."""

from __future__ import annotations

import grp
import json
import os
import select
import subprocess
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import SOCKET, sh, systemctl, wait_for

from .apiutil import api, docker, docker_bin, docker_env


def test_version_and_info(daemon: None) -> None:
    r = docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1.43", "linux"]
    r = docker("info", "--format", "{{.CgroupDriver}} {{.ServerVersion}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("systemd ")


def test_run_rm_prints_and_leaves_nothing(busybox: str, name: str) -> None:
    r = docker("run", "--rm", "--name", name, busybox, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert wait_for(lambda: docker("inspect", name).returncode != 0)
    r = docker("run", "--rm", busybox, "sh", "-c", "exit 3")
    assert r.returncode == 3


def test_detached_lifecycle(busybox: str, name: str) -> None:
    r = docker("run", "-d", "--name", name, "--label", "suite=api", busybox,
               "sh", "-c", "echo started; exec httpd -f -p 8080")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    ps = docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    assert f"{cid[:12]} {name} Up" in ps.stdout
    assert systemctl("is-active", f"sdcontainer-{name}.scope").stdout.strip() == "active"
    r = docker("exec", name, "ps")
    assert r.returncode == 0 and "httpd -f -p 8080" in r.stdout, r.stderr
    assert wait_for(lambda: "started" in docker("logs", name).stdout)
    r = docker("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Config.Labels.suite}}",
               name)
    assert r.stdout.split() == ["running", "true", "api"]
    r = docker("stop", "-t", "1", name)
    assert r.returncode == 0, r.stderr
    r = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
    assert r.stdout.split() == ["exited", "137"]  # httpd as PID 1 ignores SIGTERM
    assert systemctl("is-active", f"sdcontainer-{name}.scope").stdout.strip() != "active"
    assert docker("rm", name).returncode == 0
    assert name not in docker("ps", "-a", "--format", "{{.Names}}").stdout


def test_logs_follow_ends_with_the_container(busybox: str, name: str) -> None:
    docker("run", "-d", "--name", name, busybox, "sh", "-c",
           "for i in 1 2 3; do echo line$i; sleep 0.3; done", check=True)
    r = docker("logs", "-f", name, timeout=20)
    assert r.stdout.split() == ["line1", "line2", "line3"]


def test_exec_it_gets_a_tty(busybox: str, name: str) -> None:
    docker("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
    # script(1) gives the docker CLI a terminal, as a user's shell would.
    cmd = f"{docker_bin()} exec -it {name} sh -c 'tty; echo in-tty'"
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       env=docker_env(), timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "/dev/pts/" in r.stdout and "in-tty" in r.stdout


def _events_of(name: str) -> subprocess.Popen[str]:
    """`docker events` for container NAME (action, name, signal, exit code), ready: it
    has shown an event of ours (a SIGWINCH kill, which sleep ignores)."""
    events = subprocess.Popen(
        [docker_bin(), "events", "--filter", f"container={name}", "--format",
         "{{.Action}}|{{.Actor.Attributes.name}}|{{.Actor.Attributes.signal}}|"
         "{{.Actor.Attributes.exitCode}}"],
        stdout=subprocess.PIPE, text=True, env=docker_env())
    assert events.stdout is not None
    for _ in range(100):
        docker("kill", "-s", "WINCH", name, check=True)
        if select.select([events.stdout], [], [], 0.2)[0]:
            break
    line = events.stdout.readline()
    assert line.split("|")[:3] == ["kill", name, "28"], line
    return events


def _actions_until(events: subprocess.Popen[str], name: str, last: str) -> list[str]:
    """The actions (with their signal or exit code) up to LAST, WINCH kills left out."""
    assert events.stdout is not None
    actions: list[str] = []
    while not actions or actions[-1].split()[0] != last:
        line = events.stdout.readline()
        assert line, f"no {last} event; saw {actions}"
        words = line.strip().split("|")
        # Extra WINCH kills may still have been in flight.
        if words[1:2] == [name] and not (words[0] == "kill" and words[2:3] == ["28"]):
            actions.append(" ".join(w for w in (words[0], *words[2:]) if w != "<no value>"))
    return actions


def test_systemctl_stop_shows_as_die_event(busybox: str, name: str) -> None:
    docker("run", "-d", "--name", name, "--stop-timeout", "1", busybox, "sleep", "100",
           check=True)
    events = _events_of(name)
    # A missing event must fail the test, not hang it: the stream is cut after 60 s.
    guard = threading.Timer(60, events.kill)
    guard.start()
    try:
        systemctl("stop", f"sdcontainer-{name}.scope", check=True)
        # docker's sequence for a stop: kill with the stop signal, die, stop.
        assert _actions_until(events, name, "stop") == ["kill 15", "die 137", "stop"]
        # Our own stop is one stop event, no kill from systemd's stop job.
        docker("start", name, check=True)
        docker("stop", "-t", "1", name, check=True)
        assert _actions_until(events, name, "stop") == ["start", "die 137", "stop"]
    finally:
        guard.cancel()
        events.kill()
        events.wait()
    r = docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert r.stdout.startswith("Exited (")


def test_systemctl_kill_shows_as_kill_event(busybox: str, name: str) -> None:
    # sh as PID 1 ignores SIGUSR1; its child dies of it, and sh ends with 128+10.
    docker("run", "-d", "--name", name, busybox, "sh", "-c", "sleep 100 & wait $!",
           check=True)
    events = _events_of(name)
    guard = threading.Timer(60, events.kill)
    guard.start()
    try:
        systemctl("kill", "-s", "SIGUSR1", f"sdcontainer-{name}.scope", check=True)
        assert _actions_until(events, name, "die") == ["kill 10", "die 138"]
        # Our own kill is one kill event.
        docker("start", name, check=True)
        docker("kill", name, check=True)
        assert _actions_until(events, name, "die") == ["start", "kill 9", "die 137"]
    finally:
        guard.cancel()
        events.kill()
        events.wait()


def test_list_filters(busybox: str, name: str) -> None:
    other = name + "-x"
    try:
        docker("run", "-d", "--name", name, "--label", "tier=web", busybox, "sleep", "100",
               check=True)
        cid = docker("create", "--name", other, "--label", "tier=db", busybox, "true",
                     check=True).stdout.strip()

        def names(*f: str) -> set[str]:
            r = docker("ps", "-a", *[x for v in f for x in ("--filter", v)], "--format",
                       "{{.Names}}")
            assert r.returncode == 0, r.stderr
            return set(r.stdout.split()) & {name, other}

        assert names("status=running") == {name}
        assert names("status=created") == {other}
        assert names("label=tier=db") == {other}
        assert names("label=tier") == {name, other}
        assert names(f"name={other}") == {other}
        assert names(f"id={cid[:10]}") == {other}
        assert names(f"ancestor={busybox}", "label=tier=web") == {name}
        r = docker("ps", "--filter", "bogus=1")
        assert r.returncode != 0 and "invalid filter 'bogus'" in r.stderr
    finally:
        docker("rm", "-f", other)


def test_rename_and_prune(busybox: str, name: str) -> None:
    new = name + "-renamed"
    try:
        docker("create", "--name", name, busybox, "true", check=True)
        r = docker("rename", name, new)
        assert r.returncode == 0, r.stderr
        assert docker("inspect", "-f", "{{.Name}}", new).stdout.strip() == f"/{new}"
        assert docker("inspect", name).returncode != 0
        docker("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
        # running: renamed at once (its scope keeps the old name until it next starts)
        r = docker("rename", name, name + "-other")
        assert r.returncode == 0, r.stderr
        assert docker("rename", name + "-other", name).returncode == 0
        r = docker("container", "prune", "-f")
        assert r.returncode == 0, r.stderr
        assert docker("inspect", new).returncode != 0
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    finally:
        docker("rm", "-f", new)


def test_stats_from_the_scope_cgroup(busybox: str, name: str) -> None:
    docker("run", "-d", "--name", name, "-m", "64m", "--pids-limit", "40", busybox,
           "sh", "-c", "sleep 100 & sleep 100 & wait", check=True)
    r = docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", name)
    assert r.returncode == 0, r.stderr
    got_name, pids, *mem = r.stdout.split()
    assert got_name == name and int(pids) >= 3
    assert mem[-1] == "64MiB"
    status, body, _ = api("GET", f"/v1.41/containers/{name}/stats?stream=false&one-shot=true")
    assert status == 200
    assert body["pids_stats"]["current"] >= 3 and body["pids_stats"]["limit"] == 40
    assert 0 < body["memory_stats"]["usage"] <= 64 * 1024 * 1024
    assert body["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    # Streamed: one JSON object per line, precpu filled from the second on.
    conn_out = subprocess.run(
        ["curl", "-sN", "--max-time", "3", "--unix-socket", SOCKET,
         f"http://d/containers/{name}/stats"], capture_output=True, text=True)
    samples = [json.loads(line) for line in conn_out.stdout.splitlines() if line.strip()]
    assert len(samples) >= 2
    assert samples[1]["precpu_stats"]["cpu_usage"]["total_usage"] > 0


def test_images_save_load(busybox: str, tmp_path: os.PathLike[str]) -> None:
    tar = os.path.join(tmp_path, "saved.tar")
    r = docker("tag", busybox, "api-test/bb:saved")
    assert r.returncode == 0, r.stderr
    r = docker("save", "-o", tar, "api-test/bb:saved")
    assert r.returncode == 0 and os.path.getsize(tar) > 100_000, r.stderr
    r = docker("rmi", "api-test/bb:saved")
    assert r.returncode == 0 and "Untagged: api-test/bb:saved" in r.stdout, r.stderr
    r = docker("load", "-i", tar)
    assert r.returncode == 0 and "api-test/bb:saved" in r.stdout, r.stderr
    assert "api-test/bb" in docker("images", "--format", "{{.Repository}}").stdout
    docker("rmi", "api-test/bb:saved")


def test_pull_from_a_loopback_registry(busybox: str, tmp_path: os.PathLike[str]) -> None:
    from tests.images.conftest import _start_registry

    reg = _start_registry(Path(tmp_path) / "reg", None)
    try:
        tar = os.path.join(tmp_path, "bb.tar")
        docker("save", "-o", tar, busybox, check=True)
        sh("skopeo", "copy", "--dest-tls-verify=false", f"docker-archive:{tar}",
           f"docker://{reg.host}/api/bb:1")
        r = docker("pull", f"{reg.host}/api/bb:1", timeout=120)
        assert r.returncode == 0, r.stderr
        r = docker("run", "--rm", f"{reg.host}/api/bb:1", "echo", "pulled")
        assert r.stdout == "pulled\n", r.stderr
        docker("rmi", f"{reg.host}/api/bb:1")
    finally:
        reg.proc.terminate()
        reg.proc.wait(10)


def test_errors_in_dockers_shape(busybox: str, name: str) -> None:
    r = docker("stop", "no-such-container")
    assert r.returncode == 1
    assert r.stderr.strip() == "Error response from daemon: No such container: no-such-container"
    r = docker("run", "--rm", "--ulimit", "nofile=10:10", busybox, "true")
    assert r.returncode == 125 and "HostConfig.Ulimits is not supported" in r.stderr
    status, body, headers = api("POST", "/v1.41/containers/create",
                                {"Image": busybox, "HostConfig": {"Sysctls": {"a.b": "1"}}})
    assert status == 400 and "HostConfig.Sysctls" in body["message"]
    assert headers["content-type"] == "application/json"
    assert not any(h.startswith("access-control-") for h in headers)
    status, body, _ = api("GET", "/v1.41/containers/no-such/json")
    assert status == 404 and body == {"message": "No such container: no-such"}
    docker("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
    status, body, _ = api("DELETE", f"/v1.41/containers/{name}")
    assert status == 409 and "running container" in body["message"]


@pytest.mark.parametrize("version", ["1.24", "1.30", "1.41", "1.43"])
def test_negotiated_api_versions(daemon: None, version: str) -> None:
    status, body, _ = api("GET", f"/v{version}/containers/json?all=1")
    assert status == 200 and isinstance(body, list)
    status, body, _ = api("GET", f"/v{version}/version")
    assert status == 200 and body["ApiVersion"] == "1.43"


def test_too_old_api_version(daemon: None) -> None:
    status, body, _ = api("GET", "/v1.12/version")
    assert status == 400 and "too old" in body["message"]


def test_socket_is_group_only_and_not_abstract(daemon: None) -> None:
    sh("groupadd", "-f", "-r", "sdcontainer")
    systemctl("restart", "sdcontainerd.service", check=True)
    assert wait_for(lambda: os.path.exists(SOCKET))
    st = os.stat(SOCKET)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == \
        (0o660, 0, grp.getgrnam("sdcontainer").gr_gid)
    with open("/proc/net/unix") as f:
        assert not any("@" in line and "sdcontainer" in line for line in f)
    assert docker("version").returncode == 0
