"""The native supervisor (issue 17): once the workload runs, the Python monitor execs
native/sdc-monitor in the same process.  It must keep every duty of the monitor: the
exit status and the OOM killer's verdict recorded with the daemon down, attach, stdin,
-t with resize and exec on containers started before a daemon restart, and every byte
of output in the journal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import termios
import time
from pathlib import Path

from .conftest import VENV_BIN, sdc, sh, systemctl, unit_property, wait_for

# busybox's `stty size` prints nothing on a 0x0 terminal: wait until someone sets its size.
WAIT_FOR_SIZE = ('until [ -n "$(stty size 2>/dev/null)" ]; do sleep 0.1; done; stty size; '
                 'exit {code}')


def state(name: str) -> dict[str, object]:
    st: dict[str, object] = json.loads(sdc("inspect", name).stdout)[0]["State"]
    return st


def supervisor_of(name: str) -> int:
    """The workload's parent: the container's supervisor."""
    pid = state(name)["Pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("PPid:")))


def private_dirty_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    raise AssertionError(f"no Private_Dirty for {pid}")


def run_in_pty(args: list[str], rows: int, cols: int, timeout: float = 30) -> tuple[int, bytes]:
    """The CLI on a terminal of ROWS x COLS; its exit code and what it wrote."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(VENV_BIN / "sdcontainer"), ["sdcontainer", *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if time.monotonic() >= deadline:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def test_supervisor_outlives_the_daemon(busybox: str, name: str) -> None:
    stdin, tty, ends, oom = (f"{name}-{s}" for s in ("in", "tty", "end", "oom"))
    try:
        sdc("run", "-d", "-i", "--name", stdin, busybox, "sh", "-c",
            'read line; echo "got $line"; exit 5', check=True)
        sdc("run", "-d", "-i", "-t", "--name", tty, busybox, "sh", "-c",
            WAIT_FOR_SIZE.format(code=4), check=True)
        sdc("run", "-d", "--name", ends, busybox, "sh", "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done", check=True)
        sdc("run", "-d", "-m", "32m", "--network", "none", "--name", oom, busybox, "sh", "-c",
            "trap 'exec tail /dev/zero' USR1; while :; do sleep 0.1; done", check=True)
        for n in (stdin, tty, ends, oom):
            assert state(n)["Running"], (n, sdc("logs", n))
            sup = supervisor_of(n)
            # The native loop, not a copy of the daemon's interpreter.
            assert os.readlink(f"/proc/{sup}/exe").endswith("/sdc-monitor"), n
            assert private_dirty_kib(sup) < 1024, (n, private_dirty_kib(sup))

        # The workloads end while the daemon is down: their supervisors record how.
        pids = {n: int(str(state(n)["Pid"])) for n in (ends, oom)}
        systemctl("stop", "sdcontainerd.service", check=True)
        os.kill(pids[ends], signal.SIGTERM)
        os.kill(pids[oom], signal.SIGUSR1)
        for n in (ends, oom):
            assert wait_for(lambda n=n: unit_property(f"sdcontainer-{n}.scope", "ActiveState")
                            in ("inactive", ""), timeout=30), n
        systemctl("start", "sdcontainerd.service", check=True)
        assert wait_for(lambda: sdc("ps").returncode == 0)
        st = state(ends)
        assert st["Status"] == "exited" and st["ExitCode"] == 42, st
        st = state(oom)
        assert st["OOMKilled"] is True and st["ExitCode"] == 137, st

        # Containers started before the restart: exec, attach with stdin, a tty's size.
        r = sdc("exec", stdin, "sh", "-c", "echo exec-out; echo exec-err >&2; exit 7")
        assert (r.returncode, r.stdout, r.stderr) == (7, "exec-out\n", "exec-err\n")
        r = sdc("attach", stdin, input="hello\n")
        assert (r.returncode, r.stdout) == (5, "got hello\n"), r
        code, out = run_in_pty(["exec", "-it", tty, "sh", "-c", WAIT_FOR_SIZE.format(code=3)],
                               33, 111)
        assert code == 3 and b"33 111" in out, out
        code, out = run_in_pty(["attach", tty], 40, 120)
        assert code == 4 and b"40 120" in out, out
        assert state(tty)["ExitCode"] == 4
    finally:
        for n in (stdin, tty, ends, oom):
            sdc("rm", "-f", n)


def test_journal_keeps_a_1mib_line_and_a_100mib_burst(busybox: str, name: str) -> None:
    # 6400 lines of 16 KiB: 100 MiB in fewer entries than journald's rate limit allows.
    sdc("run", "-d", "--network", "none", "--name", name, busybox, "sh", "-c",
        "head -c 1048576 /dev/zero | tr '\\000' b; echo; "
        "yes $(head -c 16383 /dev/zero | tr '\\000' a) | head -n 6400", check=True)
    assert sdc("wait", name, timeout=300).stdout.strip() == "0"
    r = sdc("logs", name, timeout=300)
    assert r.returncode == 0, r.stderr[-500:]
    lines = r.stdout.split("\n")
    assert lines[0] == "b" * (1 << 20), len(lines[0])
    assert lines[1:] == ["a" * 16383] * 6400 + [""], (len(lines), {len(x) for x in lines})
    sh("journalctl", "--sync")
    # By its fields, not -u: journald may not know the unit of a sender that has exited.
    partial = sh("journalctl", "-o", "cat", "--no-pager",
                 "CONTAINER_PARTIAL_MESSAGE=true", f"CONTAINER_NAME={name}").stdout
    assert partial.count("\n") == 63  # the 1 MiB line: 63 marked pieces, then its end
