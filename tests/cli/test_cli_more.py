"""Issue 15's remaining verbs and flags: -P, exec --privileged and --env-file, ps -s,
login's prompts, rename of a running container, run without arguments."""

from __future__ import annotations

import json
import os
import pty
import select
import time
from pathlib import Path

from tests.api.apiutil import docker
from tests.integration.conftest import VENV_BIN, sdc, sh, systemctl, unit_property, wait_for

SERVE = "mkdir -p /www && echo hello > /www/index.html && httpd -f -p 80 -h /www"


def inspect(ref: str) -> dict:  # type: ignore[type-arg]
    r = sdc("inspect", ref)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]  # type: ignore[no-any-return]


def test_run_and_exec_without_arguments_say_what_docker_says() -> None:
    for args in (["run"], ["create"], ["run", "-d"], ["exec"], ["exec", "somecontainer"]):
        ours, theirs = sdc(*args), docker(*args)
        assert ours.returncode == theirs.returncode == 1, (args, ours.stderr)
        assert ours.stderr == theirs.stderr.replace("docker", "sdcontainer"), ours.stderr
    assert ours.stdout == ""


def test_publish_all(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--name", name, "-P", "--expose", "80", "--expose", "81",
            "--expose", "5353/udp", "-p", "127.0.0.1:18181:81", busybox, "sh", "-c", SERVE)
    assert r.returncode == 0, r.stderr
    info = inspect(name)
    assert info["HostConfig"]["PublishAllPorts"] is True
    ports = info["NetworkSettings"]["Ports"]
    # every exposed port, on a free host port; an explicit -p of one wins over -P
    assert sorted(ports) == ["5353/udp", "80/tcp", "81/tcp"], ports
    assert ports["81/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "18181"}]
    host_port = ports["80/tcp"][0]["HostPort"]
    assert ports["80/tcp"][0]["HostIp"] == "0.0.0.0" and int(host_port) > 1024, ports
    assert int(ports["5353/udp"][0]["HostPort"]) > 1024
    out = sdc("port", name, "80").stdout
    assert out == f"0.0.0.0:{host_port}\n"
    assert sdc("port", name).stdout == docker("port", name).stdout
    # reachable through the host port (inside the box)
    assert wait_for(lambda: sh("timeout", "5", "busybox", "wget", "-qO-",
                               f"http://127.0.0.1:{host_port}/", check=False).stdout
                    == "hello\n", timeout=10)
    # the image's exposed ports too
    image, second = f"{name}-img", f"{name}-2"
    r = sdc("commit", "-c", "EXPOSE 90", name, image)
    assert r.returncode == 0, r.stderr
    try:
        sdc("run", "-d", "--name", second, "-P", image, "sleep", "300", check=True)
        ports = inspect(second)["NetworkSettings"]["Ports"]
        assert int(ports["90/tcp"][0]["HostPort"]) > 1024, ports
    finally:
        sdc("rm", "-f", second)
        sdc("rmi", image)


def test_exec_privileged_and_env_file(busybox: str, name: str, tmp_path: Path) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "300", check=True)

    def status(*flags: str) -> dict[str, str]:
        r = sdc("exec", *flags, name, "cat", "/proc/self/status")
        assert r.returncode == 0, r.stderr
        return dict(line.split(":\t", 1) for line in r.stdout.splitlines() if ":\t" in line)

    plain, privileged = status(), status("--privileged")
    assert int(plain["Seccomp"]) == 2 and int(privileged["Seccomp"]) == 0
    eff, full = int(plain["CapEff"], 16), int(privileged["CapEff"], 16)
    assert not eff & (1 << 21) and full & (1 << 21)  # CAP_SYS_ADMIN only when privileged
    assert eff | full == full
    assert sdc("exec", name, "mount", "-t", "tmpfs", "t", "/tmp").returncode != 0
    r = sdc("exec", "--privileged", name, "mount", "-t", "tmpfs", "t", "/tmp")
    assert r.returncode == 0, r.stderr

    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nA=from-file\nB\nC=c\n")
    r = subprocess_env(sdc_env={"B": "from-our-env"}, args=[
        "exec", "--env-file", str(env_file), "-e", "C=from-flag", name,
        "sh", "-c", "echo $A $B $C"])
    assert r == "from-file from-our-env from-flag\n"
    r2 = sdc("exec", "--env-file", str(tmp_path / "missing"), name, "true")
    assert r2.returncode != 0 and "missing" in r2.stderr


def subprocess_env(sdc_env: dict[str, str], args: list[str]) -> str:
    """The CLI's stdout, run with SDC_ENV added to our environment."""
    import subprocess

    r = subprocess.run([str(VENV_BIN / "sdcontainer"), *args], capture_output=True, text=True,
                       timeout=60, env={**os.environ, **sdc_env})
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_ps_size(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c",
        "head -c 20000 /dev/urandom > /blob; sleep 300", check=True)
    assert wait_for(lambda: sdc("exec", name, "test", "-s", "/blob").returncode == 0)
    fmt = ["--filter", f"name={name}", "--format", "{{.Names}} {{.Size}}"]
    ours = sdc("ps", *fmt).stdout
    assert ours == docker("ps", *fmt).stdout  # .Size in a template asks for sizes
    assert ours.startswith(f"{name} 2") and "(virtual " in ours, ours
    table = sdc("ps", "-s", "--filter", f"name={name}").stdout.splitlines()
    assert table[0].split()[-1] == "SIZE" and table[0].split() == docker(
        "ps", "-s", "--filter", f"name={name}").stdout.splitlines()[0].split()
    assert table[1].endswith(ours.split(" ", 1)[1].strip()), table
    assert "SIZE" not in sdc("ps", "--filter", f"name={name}").stdout


def _read_until(fd: int, want: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while want not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_login_asks_for_the_username_first(daemon: None) -> None:
    # Nothing listens on 127.0.0.1:1 in the box: the daemon's check fails at once.
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(VENV_BIN / "sdcontainer"), ["sdcontainer", "login", "127.0.0.1:1"])
    try:
        assert b"Username: " in _read_until(fd, b"Username: ")
        os.write(fd, b"someone\n")
        assert b"Password: " in _read_until(fd, b"Password: ")
        os.write(fd, b"secret\n")
        rest = _read_until(fd, b"\0", timeout=30)  # to its end
        assert b"secret" not in rest  # not echoed
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 1
    r = sdc("login", "--password-stdin", "127.0.0.1:1", input="pw\n")
    assert r.returncode == 1
    assert r.stderr == "the --password-stdin option requires --username to be set\n"
    r = sdc("login", "127.0.0.1:1", input="")
    assert r.returncode == 1 and "Cannot perform an interactive login from a non TTY" in r.stderr


def test_rename_running_container(busybox: str, name: str) -> None:
    net, new, peer = f"{name}-net", f"{name}-new", f"{name}-peer"
    sdc("network", "create", net, check=True)
    try:
        sdc("run", "-d", "--name", name, "--network", net, busybox, "sh", "-c",
            "echo started; sleep 300", check=True)
        sdc("run", "-d", "--name", peer, "--network", net, busybox, "sleep", "300",
            check=True)
        old_scope = f"sdcontainer-{name}.scope"
        since = f"{time.time() - 1:.3f}"
        r = sdc("rename", name, new)
        assert r.returncode == 0, r.stderr
        info = inspect(new)
        assert info["Name"] == f"/{new}" and info["State"]["Running"]
        # the running scope keeps the name it was made with until the next start
        assert info["Systemd"]["Unit"] == old_scope
        assert unit_property(old_scope, "ActiveState") == "active"
        assert sdc("inspect", name).returncode != 0
        assert sdc("ps", "--filter", f"name={new}", "--format", "{{.Names}}").stdout == \
            f"{new}\n"
        events = sdc("events", "--since", since, "--until", f"{time.time():.3f}", "--filter",
                     "event=rename", "--format", "{{.Actor.Attributes.oldName}}").stdout
        assert events == f"/{name}\n", events
        # the peer's hosts file names it by its new name
        hosts = sdc("exec", peer, "cat", "/etc/hosts").stdout
        assert new in hosts.split() and name not in hosts.split(), hosts
        assert sdc("exec", new, "echo", "hi").stdout == "hi\n"
        assert sdc("logs", new).stdout == "started\n"
        # the old name is held by the scope: no new container may take it
        r = sdc("create", "--name", name, busybox, "true")
        assert r.returncode == 125 and old_scope in r.stderr, r.stderr
        r = sdc("rename", peer, name)
        assert r.returncode != 0 and old_scope in r.stderr, r.stderr
        assert sdc("kill", new).returncode == 0
        assert wait_for(lambda: unit_property(old_scope, "ActiveState") in ("inactive", ""))
        # its next run's scope carries the new name; the old name is free again
        assert sdc("create", "--name", name, busybox, "true").returncode == 0
        sdc("start", new, check=True)
        assert unit_property(f"sdcontainer-{new}.scope", "ActiveState") == "active"
        assert inspect(new)["Systemd"]["Unit"] == f"sdcontainer-{new}.scope"
        assert sdc("stop", "-t", "1", new).returncode == 0
        assert systemctl("is-active", f"sdcontainer-{new}.scope").stdout.strip() != "active"
    finally:
        sdc("rm", "-f", new, peer)
        sdc("rm", "-f", name)
        sdc("network", "rm", net)
