"""Who starts an exec session under the native supervisor (issue 17).

While the daemon's zygote answers on its exec socket, it forks the session (no fresh
interpreter per exec or healthcheck probe); when it does not, the supervisor falls back
to fork+exec of one, its own child.  Either way the session is in the container's
cgroups, in every hierarchy, before the command runs, and its exit status is reported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import VENV_BIN, wait_for
from .test_supervisor import state, supervisor_of

ZYGOTE_SOCKET = Path("/run/sdcontainer/zygote.sock")


def ppid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("PPid:")))


def tini_with(marker: str) -> int | None:
    """The pid of the exec's tini (its argv carries MARKER), or None."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"tini") and marker.encode() in argv:
            return int(entry.name)
    return None


def check_session(name: str, marker: str) -> tuple[int, int]:
    """Run an exec that lasts a while; (its session's parent, the supervisor's pid), after
    checking that the session shares the supervisor's cgroups and the status arrives."""
    sup = supervisor_of(name)
    proc = subprocess.Popen([str(VENV_BIN / "sdcontainer"), "exec", name, "sh", "-c",
                             "sleep 3; exit 7", marker])
    try:
        assert wait_for(lambda: tini_with(marker) is not None, timeout=20)
        tini = tini_with(marker)
        assert tini is not None
        session = ppid(tini)
        assert Path(f"/proc/{session}/comm").read_text().strip() == "sdc-exec"
        mine = Path(f"/proc/{session}/cgroup").read_text()
        assert mine == Path(f"/proc/{sup}/cgroup").read_text()
        assert any(line.startswith("0::") and line.endswith(f"/sdcontainer-{name}.scope")
                   for line in mine.splitlines()), mine
        parent = ppid(session)
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return parent, sup


def test_exec_session_forked_by_the_zygote_or_by_the_supervisor(busybox: str,
                                                                 name: str) -> None:
    subprocess.run([str(VENV_BIN / "sdcontainer"), "run", "-d", "--name", name, busybox,
                    "sleep", "1000"], check=True, capture_output=True)
    assert state(name)["Running"]
    assert ZYGOTE_SOCKET.is_socket()
    parent, sup = check_session(name, f"zygote-{name}")
    assert parent != sup  # double-forked by the zygote, not the supervisor's child
    aside = ZYGOTE_SOCKET.with_name("zygote.sock.aside")
    os.rename(ZYGOTE_SOCKET, aside)
    try:
        parent, sup = check_session(name, f"fallback-{name}")
        assert parent == sup  # the fresh interpreter the supervisor forked
    finally:
        os.rename(aside, ZYGOTE_SOCKET)
