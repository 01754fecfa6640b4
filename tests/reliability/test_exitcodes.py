"""Exit codes as docker's, and every signal deliverable with `kill -s`."""

from __future__ import annotations

import json
import signal

import pytest

from tests.integration.conftest import sdc, wait_for

from .helpers import inspect


@pytest.mark.parametrize(("argv", "code"), [
    (["true"], 0),
    (["false"], 1),
    (["sh", "-c", "exit 32"], 32),
    (["sh", "-c", "exit 255"], 255),
    (["no-such-command"], 127),
    (["/etc/passwd"], 126),
    # PID 1 of a pid namespace cannot signal itself to death (as with docker): a child.
    (["sh", "-c", "sh -c 'kill -9 $$'; exit $?"], 137),
])
def test_exit_code(busybox: str, argv: list[str], code: int) -> None:
    r = sdc("run", "--rm", "--network", "none", busybox, *argv)
    assert r.returncode == code, (argv, r.returncode, r.stderr)


def test_daemon_side_error_is_125(busybox: str) -> None:
    r = sdc("run", "--rm", "no-such-image-xyz", "true")
    assert r.returncode == 125 and "Traceback" not in r.stderr, r.stderr
    r = sdc("run", "--rm", "--stop-signal", "SIGNOPE", busybox, "true")
    assert r.returncode == 125, r.stderr


def test_sigkill_is_137(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    assert sdc("kill", name).returncode == 0
    assert sdc("wait", name).stdout.strip() == "137"
    st = inspect(name)["State"]  # type: ignore[index]
    assert st["ExitCode"] == 137 and not st["OOMKilled"]


# SIGKILL and SIGSTOP cannot be trapped; each is checked by its effect instead.  32 and
# 33 are glibc's own (cancellation, setxid): its sigaction refuses them, so no shell in
# a glibc image can trap them; `kill -s` must still accept them.
UNTRAPPABLE = (signal.SIGKILL, signal.SIGSTOP, 32, 33)
TRAPPABLE = [n for n in range(1, int(signal.SIGRTMAX) + 1) if n not in UNTRAPPABLE]


def test_every_signal_reaches_a_trap(busybox: str, name: str) -> None:
    traps = " ".join(f"trap 'echo got {n}' {n};" for n in TRAPPABLE)
    assert sdc("run", "-d", "--name", name, "--network", "none", busybox, "sh", "-c",
               f"{traps} echo ready; while :; do sleep 0.05; done").returncode == 0
    assert wait_for(lambda: "ready" in sdc("logs", name).stdout, 10)
    for n in TRAPPABLE:
        r = sdc("kill", "-s", str(n), name)
        assert r.returncode == 0, (n, r.stderr)
        # One at a time: the shell runs a trap per pending signal, between commands.
        assert wait_for(lambda n=n: f"got {n}\n" in sdc("logs", name).stdout, 10), n
    for n in (32, 33):
        assert sdc("kill", "-s", str(n), name).returncode == 0, n
    assert inspect(name)["State"]["Running"]  # type: ignore[index]
    # STOP freezes the workload (systemd's kill reaches every process), CONT resumes it.
    assert sdc("kill", "-s", "STOP", name).returncode == 0
    assert sdc("kill", "-s", "CONT", name).returncode == 0
    assert sdc("kill", "-s", "KILL", name).returncode == 0
    assert sdc("wait", name).stdout.strip() == "137"


@pytest.mark.parametrize("bad", ["0", "65", "-1", "SIGNOPE", "RTMIN+99", "1.5"])
def test_bad_signal_is_refused(busybox: str, name: str, bad: str) -> None:
    assert sdc("run", "-d", "--name", name, "--network", "none", busybox, "sleep", "100"
               ).returncode == 0
    r = sdc("kill", "-s", bad, name)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(sdc("inspect", name).stdout)[0]["State"]["Running"]
