"""The generator: .container files become services that run, stop, restart and notify."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, sdc, sh, systemctl, unit_property, wait_for

ETC = Path("/etc/sdcontainer/containers")
GEN = Path("/run/systemd/generator")
HOST_USR = ["/usr:/usr:ro", "/usr/lib:/lib:ro", "/usr/lib64:/lib64:ro"]


@pytest.fixture
def declare(daemon: None, busybox: str) -> Iterator[object]:
    """Write .container files, daemon-reload; afterwards stop, remove and reload."""
    written: list[tuple[Path, str]] = []

    def write(stem: str, text: str) -> str:
        ETC.mkdir(parents=True, exist_ok=True)
        path = ETC / f"{stem}.container"
        path.write_text(text)
        written.append((path, stem))
        systemctl("daemon-reload", check=True)
        return f"sdcontainer-{stem}.service"

    yield write
    for path, stem in written:
        systemctl("stop", f"sdcontainer-{stem}.service")
        systemctl("reset-failed", f"sdcontainer-{stem}.service")
        sdc("rm", "-f", stem)
        path.unlink(missing_ok=True)
    systemctl("daemon-reload")


def containers() -> list[str]:
    return sdc("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_generated_unit_verifies(declare) -> None:  # type: ignore[no-untyped-def]
    unit = declare("gen-verify", 'image = "busybox"\ncommand = "sleep 1000"\n'
                   'publish = ["8080:80"]\nenv = { GREETING = "a b $HOME %h" }\n'
                   'restart = "on-failure"\nstop-timeout = 3\n'
                   '[service]\nwanted-by = ["multi-user.target"]\n')
    text = (GEN / unit).read_text()
    assert "Type=notify" in text and "NotifyAccess=all" in text and "KillMode=mixed" in text
    assert "Delegate=yes" in text and "SyslogIdentifier=%N" in text
    assert "Restart=on-failure" in text and "--sdnotify=conmon" in text
    assert '"GREETING=a b $$HOME %%h"' in text
    assert (GEN / "multi-user.target.wants" / unit).is_symlink()
    r = sh("systemd-analyze", "verify", "--man=no", str(GEN / unit), check=False)
    assert r.returncode == 0, r.stderr
    assert unit_property(unit, "LoadState") == "loaded"
    assert unit_property(unit, "SourcePath") == str(ETC / "gen-verify.container")


def test_invalid_files_are_reported(declare) -> None:  # type: ignore[no-untyped-def]
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    declare("gen-bad1", 'image = "busybox"\nbogus = 1\n')
    declare("gen-bad2", 'command = "true"\n')
    declare("gen-bad3", 'image = "busybox"\nrestart = "sometimes"\n')
    declare("gen-bad4", 'image = "busybox\n')
    for n in range(1, 5):
        assert not (GEN / f"sdcontainer-gen-bad{n}.service").exists()
    assert wait_for(lambda: sh("journalctl", "-t", "sdcontainer-generator", "--since", since,
                               "--no-pager", "-o", "cat").stdout.count("no unit generated") >= 4)
    log = sh("journalctl", "-t", "sdcontainer-generator", "--since", since, "--no-pager",
             "-o", "cat").stdout
    assert "gen-bad1.container: unknown key 'bogus'" in log
    assert "gen-bad2.container: no image given" in log
    assert "invalid restart 'sometimes'" in log
    assert "gen-bad4.container:" in log


def test_service_starts_stops_and_removes(declare) -> None:  # type: ignore[no-untyped-def]
    unit = declare("gen-run", 'image = "busybox"\ninit = true\nstop-timeout = 5\n'
                   'command = ["sh", "-c", "echo hello from gen; exec sleep 1000"]\n')
    systemctl("start", unit, check=True)
    assert unit_property(unit, "ActiveState") == "active"
    assert "gen-run" in containers()
    assert systemctl("is-active", "sdcontainer-gen-run.scope").stdout.strip() == "active"
    assert wait_for(lambda: "hello from gen" in sh(
        "journalctl", "CONTAINER_NAME=gen-run", "--no-pager", "-o", "cat").stdout)
    start = time.monotonic()
    systemctl("stop", unit, check=True)
    assert time.monotonic() - start < 5, "stopped by its stop signal, not the timeout"
    assert unit_property(unit, "ActiveState") == "inactive"  # a clean stop, not failed
    assert "gen-run" not in containers(), "a stop removes the --rm container (podman #17516)"
    systemctl("start", unit, check=True)  # and the name is free for the next start
    assert unit_property(unit, "ActiveState") == "active"


def test_systemctl_kill_does_not_hang(declare) -> None:  # type: ignore[no-untyped-def]
    unit = declare("gen-kill", 'image = "busybox"\ninit = true\ncommand = "sleep 1000"\n')
    systemctl("start", unit, check=True)
    systemctl("kill", unit, check=True)  # SIGTERM to the command, relayed to the container
    assert wait_for(lambda: unit_property(unit, "ActiveState") in ("inactive", "failed"),
                    timeout=10), unit_property(unit, "ActiveState")
    assert wait_for(lambda: "gen-kill" not in containers())
    systemctl("start", unit, check=True)
    systemctl("kill", "-s", "KILL", unit, check=True)  # the command dies; ExecStopPost cleans
    assert wait_for(lambda: unit_property(unit, "ActiveState") in ("inactive", "failed"),
                    timeout=10), unit_property(unit, "ActiveState")
    assert wait_for(lambda: "gen-kill" not in containers())


def test_restart_on_failure(declare) -> None:  # type: ignore[no-untyped-def]
    unit = declare("gen-fail", 'image = "busybox"\nrestart = "on-failure"\n'
                   'command = ["sh", "-c", "sleep 1; exit 3"]\n')
    systemctl("start", unit, check=True)
    assert wait_for(lambda: int(unit_property(unit, "NRestarts") or 0) >= 2, timeout=20)


def test_notify_waits_for_ready(declare) -> None:  # type: ignore[no-untyped-def]
    script = ("import os, socket, time; print('preparing', flush=True); time.sleep(3); "
              "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
              "s.connect(os.environ['NOTIFY_SOCKET']); "
              "s.send(b'READY=1\\nSTATUS=ready from the workload\\nMAINPID=1'); time.sleep(1000)")
    unit = declare("gen-notify", 'image = "busybox"\nnotify = true\ninit = true\n'
                   f'volume = {json.dumps(HOST_USR)}\n'
                   f'command = ["/usr/bin/python3", "-c", {json.dumps(script)}]\n')
    assert "--sdnotify=container" in (GEN / unit).read_text()
    systemctl("start", "--no-block", unit, check=True)
    # The workload is up and will not send READY=1 for 3 s: the unit must still wait.
    assert wait_for(lambda: "preparing" in sdc("logs", "gen-notify").stdout, timeout=15)
    assert unit_property(unit, "ActiveState") == "activating"
    assert wait_for(lambda: unit_property(unit, "ActiveState") == "active", timeout=15)
    assert unit_property(unit, "StatusText") == "ready from the workload"
    main_pid = int(unit_property(unit, "MainPID"))
    cmdline = Path(f"/proc/{main_pid}/cmdline").read_bytes().split(b"\0")
    assert b"run" in cmdline, "the main PID stays the sdcontainer command"


def test_conmon_ready_at_start(declare) -> None:  # type: ignore[no-untyped-def]
    unit = declare("gen-conmon", 'image = "busybox"\ninit = true\ncommand = "sleep 1000"\n')
    systemctl("start", unit, check=True)
    assert unit_property(unit, "ActiveState") == "active"
    assert unit_property(unit, "StatusText").startswith("container gen-conmon started")


def test_multi_user_target_starts_it(declare) -> None:  # type: ignore[no-untyped-def]
    unit = declare("gen-boot", 'image = "busybox"\ninit = true\ncommand = "sleep 1000"\n'
                   '[service]\nwanted-by = ["multi-user.target"]\n')
    # The box booted to basic.target; reaching multi-user.target is what a boot does.
    systemctl("start", "multi-user.target", check=True)
    assert wait_for(lambda: unit_property(unit, "ActiveState") == "active", timeout=15)
    assert "gen-boot" in containers()


def test_generate_systemd_from_container(busybox: str, name: str, tmp_path: Path) -> None:
    assert sdc("create", "--name", name, "--restart", "always", "-e", "A=1", "--stop-timeout",
               "4", busybox, "sleep", "1000").returncode == 0
    r = sdc("generate", "systemd", name)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert f"--name {name}" in text and "--rm" in text and "Restart=always" in text
    assert "-e A=1" in text and "--stop-timeout 4" in text
    assert f"ExecStop={REPO}/.venv/bin/sdcontainer stop -t 4 {name}" in text
    path = tmp_path / f"sdcontainer-{name}.service"
    path.write_text(text)
    r = sh("systemd-analyze", "verify", "--man=no", str(path), check=False)
    assert r.returncode == 0, r.stderr
    # Same renderer as the generator: the same unit from the equivalent file.
    out = subprocess.run([sys.executable, "-c", (
        "from sdcontainer.systemd import generator as g; import sys;"
        f"c = g.parse({{'image': 'busybox', 'command': ['sleep', '1000'], 'env': ['A=1'],"
        f"'stop-timeout': 4, 'restart': 'always', 'service': {{'wanted-by': "
        f"['multi-user.target']}}}}, '{name}'); sys.stdout.write(g.render(c))")],
        capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out == text


def generator_log(since: str) -> str:
    return sh("journalctl", "-t", "sdcontainer-generator", "--since", since, "--no-pager",
              "-o", "cat").stdout


def test_injection_in_a_value_makes_no_unit(declare) -> None:  # type: ignore[no-untyped-def]
    """Issue 13 item 9: `timeout-start-sec = "5\\nExecStartPre=..."` ran a command."""
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    pwned = Path("/run/sdcontainer-gen-pwned")
    pwned.unlink(missing_ok=True)
    inject = f"ExecStartPre=/bin/touch {pwned}"
    declare("gen-inj1", 'image = "busybox"\ncommand = "sleep 1000"\n'
            f'[service]\ntimeout-start-sec = "5\\n{inject}"\n')
    declare("gen-inj2", f'image = "busybox\\n{inject}"\n')
    declare("gen-inj3", 'image = "busybox"\n[service]\ntimeout-start-sec = "5 % $X"\n')
    # A file whose name carries the newline: it would have reached SourcePath=.
    odd = ETC / "gen-inj4\nExecStartPre=touch gen-pwned.container"  # no / in a file name
    odd.write_text('image = "busybox"\nname = "gen-inj4"\n')
    try:
        systemctl("daemon-reload", check=True)
        for n in range(1, 5):
            unit = f"sdcontainer-gen-inj{n}.service"
            assert not (GEN / unit).exists(), unit
            assert unit_property(unit, "LoadState") == "not-found", unit
            systemctl("start", unit)  # refused: there is no such unit
        units = [p.read_text() for p in GEN.glob("sdcontainer-*.service")]
        assert not any(inject in u or "touch gen-pwned" in u for u in units)
        assert not pwned.exists()
        assert wait_for(lambda: generator_log(since).count("no unit generated") >= 4)
        log = generator_log(since)
        assert "gen-inj1.container: invalid timeout-start-sec '5\\nExecStartPre" in log
        assert "gen-inj2.container: image 'busybox\\nExecStartPre" in log
        assert "contains a control character" in log
        assert "gen-inj3.container: invalid timeout-start-sec '5 % $X'" in log
        assert "source path" in log and "gen-inj4" in log
    finally:
        odd.unlink(missing_ok=True)


def test_values_reach_the_container_unchanged(declare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """%, $, quotes, backslashes, spaces, a tab and a newline in an env value and in a
    command argument: quoted for systemd, they arrive byte for byte."""
    value = "a  b %h %% %n $HOME $$ ${X} \"dq\" 'sq' back\\slash \\\\ \\n ; end\ttab\nline2"
    out = tmp_path / "out"
    out.mkdir()
    script = 'printf %s "$V" > /out/env; printf %s "$1" > /out/arg; exec sleep 1000'
    unit = declare("gen-quote", 'image = "busybox"\ninit = true\n'
                   f'env = {{ V = {json.dumps(value)} }}\n'
                   f'volume = ["{out}:/out"]\n'
                   f'command = ["sh", "-c", {json.dumps(script)}, "sh", {json.dumps(value)}]\n')
    r = sh("systemd-analyze", "verify", "--man=no", str(GEN / unit), check=False)
    assert r.returncode == 0, r.stderr
    systemctl("start", unit, check=True)
    assert wait_for(lambda: (out / "arg").exists() and (out / "arg").read_text() == value,
                    timeout=15), (out / "arg").read_bytes() if (out / "arg").exists() else None
    assert (out / "env").read_text() == value
    # And the argv systemd built for the service's main process is the one we meant.
    main_pid = int(unit_property(unit, "MainPID"))
    argv = Path(f"/proc/{main_pid}/cmdline").read_bytes().decode().split("\0")
    assert f"V={value}" in argv and argv[-2] == value
