"""Bad input: one clear line, a non-zero exit, nothing left behind."""

from __future__ import annotations

import os

from .conftest import sdc, sh


def scopes() -> set[str]:
    out = sh("systemctl", "list-units", "--all", "--plain", "--no-legend", "sdcontainer-*").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def state_entries() -> set[str]:
    return set(os.listdir("/var/lib/sdcontainer/containers"))


def check_one_line(r, code: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    if lines and lines[0].startswith("Unable to find image"):  # docker's notice before a pull
        lines = lines[1:]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_name(busybox: str) -> None:
    before = state_entries()
    check_one_line(sdc("run", "--name", "bad/name", busybox, "true"), 125, "invalid container name")
    check_one_line(sdc("run", "--name=-x", busybox, "true"), 125, "invalid container name")
    assert state_entries() == before


def test_name_clash(busybox: str, name: str) -> None:
    sdc("create", "--name", name, busybox, "true", check=True)
    check_one_line(sdc("create", "--name", name, busybox, "true"), 125, "already in use")


def test_unknown_image(daemon: None) -> None:
    before = state_entries()
    check_one_line(sdc("create", "no-such-image-here"), 125, "no-such-image-here")
    assert state_entries() == before


def test_bad_flags(busybox: str) -> None:
    r = sdc("run", "--no-such-flag", busybox, "true")
    assert r.returncode == 125 and "--no-such-flag" in r.stderr
    check_one_line(sdc("run", "-m", "lots", busybox, "true"), 125, "invalid size")
    check_one_line(sdc("run", "--stop-signal", "SIGNOPE", busybox, "true"), 125, "invalid signal")
    check_one_line(sdc("run", "-v", "relative:x", busybox, "true"), 125, "invalid volume")
    check_one_line(sdc("run", "-v", "/does/not/exist:/x", busybox, "true"), 125,
                   "does not exist")
    check_one_line(sdc("kill", "-s", "NOPE", "whatever"), 1)


def test_missing_command_127_and_no_leak(busybox: str, name: str) -> None:
    units_before = scopes()
    r = sdc("run", "--rm", "--name", name, busybox, "no-such-command")
    check_one_line(r, 127, "executable file not found")
    assert sdc("inspect", name).returncode == 1
    assert scopes() == units_before
    mounts = sh("cat", "/proc/self/mountinfo").stdout
    assert "/var/lib/sdcontainer/containers" not in mounts


def test_not_executable_126(busybox: str) -> None:
    check_one_line(sdc("run", "--rm", busybox, "/etc/passwd"), 126, "permission denied")


def test_unknown_container(daemon: None) -> None:
    for verb in (["stop"], ["kill"], ["rm"], ["start"], ["logs"], ["wait"], ["inspect"]):
        r = sdc(*verb, "no-such-container")
        assert r.returncode == 1, verb
        assert "No such" in r.stderr and "Traceback" not in r.stderr


def test_no_daemon_is_a_clear_error() -> None:
    env_socket = "/run/sdcontainer/none.sock"
    import subprocess

    from .conftest import VENV_BIN
    r = subprocess.run([str(VENV_BIN / "sdcontainer"), "ps"], capture_output=True, text=True,
                       env={**os.environ, "SDCONTAINER_HOST": f"unix://{env_socket}"})
    check_one_line(r, 1, "Cannot connect to sdcontainerd")
