"""exec and top inside a running container; -t gives a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

from .conftest import VENV_BIN, sdc


def test_exec_runs_inside(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, "--hostname", "inner", busybox, "sleep", "100", check=True)
    r = sdc("exec", name, "hostname")
    assert r.stdout.strip() == "inner"
    r = sdc("exec", "-e", "X=1", "-w", "/tmp", name, "sh", "-c", "echo $X $(pwd); exit 5")
    assert r.stdout.strip() == "1 /tmp"
    assert r.returncode == 5
    assert sdc("exec", "-u", "nobody", name, "id", "-u").stdout.strip() == "65534"
    ps = sdc("exec", name, "ps").stdout
    assert "sleep 100" in ps
    assert sdc("exec", name, "nonexistent-cmd").returncode == 127


def test_exec_stdin(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
    r = sdc("exec", "-i", name, "sh", "-c", "tr a-z A-Z", input="shout\n")
    assert r.stdout == "SHOUT\n"


def test_run_interactive_stdin(busybox: str) -> None:
    r = sdc("run", "--rm", "-i", busybox, "sh", "-c", "cat; echo done", input="piped\n")
    assert r.stdout == "piped\ndone\n"


def test_top(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "123", check=True)
    r = sdc("top", name)
    assert r.returncode == 0, r.stderr
    assert "PID" in r.stdout.splitlines()[0]
    assert "sleep 123" in r.stdout
    assert "sdc-monitor" not in r.stdout


def run_in_pty(args: list[str], send: bytes, timeout: float = 20) -> tuple[int, bytes]:
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(VENV_BIN / "sdcontainer"), ["sdcontainer", *args])
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        if not sent and b"#" in out:
            os.write(fd, send)
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def test_run_it_gives_a_real_pty(busybox: str) -> None:
    code, out = run_in_pty(["run", "--rm", "-it", busybox, "sh"], b"tty; exit 5\r")
    assert code == 5, out
    assert b"/dev/pts/0" in out


def test_run_t_console(busybox: str) -> None:
    r = subprocess.run([str(VENV_BIN / "sdcontainer"), "run", "--rm", "-t", busybox, "sh", "-c",
                        "test -t 1 && echo is-a-tty; tty"], capture_output=True, timeout=30)
    assert r.stdout == b"is-a-tty\r\n/dev/pts/0\r\n"
