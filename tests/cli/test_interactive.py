"""Interactive sessions in a real terminal (tmux): run -it, the detach keys, attach, exec -it,
start -ai; and the API's detachKeys on a raw attach socket, as docker-py uses it."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, SOCKET, VENV_BIN, sdc, wait_for

CLI = str(VENV_BIN / "sdcontainer")


class Tmux:
    """One tmux server of our own, its windows running commands."""

    def __init__(self, tmp: Path) -> None:
        self.sock = str(tmp / "tmux.sock")
        self.tmp = tmp

    def __call__(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True, text=True,
                           timeout=30, check=True)
        return r.stdout

    def window(self, name: str, command: str) -> None:
        """Run COMMAND in a new window; its exit status goes to the file NAME.rc."""
        rc = self.tmp / f"{name}.rc"
        shell = f"{command}; echo $? > {rc}.tmp; mv {rc}.tmp {rc}; sleep 600"
        if not Path(self.sock).exists():
            self("new-session", "-d", "-s", "t", "-n", name, "-x", "120", "-y", "30", shell)
        else:
            self("new-window", "-t", "t", "-n", name, shell)

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", f"t:{name}")

    def keys(self, name: str, *keys: str) -> None:
        self("send-keys", "-t", f"t:{name}", *keys)

    def shows(self, name: str, text: str, timeout: float = 20) -> bool:
        return wait_for(lambda: text in self.screen(name), timeout=timeout)

    def rc(self, name: str, timeout: float = 20) -> int | None:
        path = self.tmp / f"{name}.rc"
        if not wait_for(path.exists, timeout=timeout):
            return None
        return int(path.read_text())


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    tmp = REPO / f".tmux-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    t = Tmux(tmp)
    yield t
    subprocess.run(["tmux", "-S", t.sock, "kill-server"], capture_output=True)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


def state(name: str) -> str:
    return sdc("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.strip()


def test_run_it_detach_attach_exec_and_start_ai(busybox: str, name: str, tmux: Tmux) -> None:
    # run -it, type, detach with Ctrl-P Ctrl-Q: the CLI exits 0, the shell lives on
    tmux.window("run", f"{CLI} run -it --name {name} {busybox} sh")
    assert tmux.shows("run", "/ #"), tmux.screen("run")
    tmux.keys("run", "echo hello-$((6*7))", "Enter")
    assert tmux.shows("run", "hello-42"), tmux.screen("run")
    tmux.keys("run", "C-p", "C-q")
    assert tmux.rc("run") == 0, tmux.screen("run")
    assert state(name) == "running 0"

    # exec -it, with docker's syntax for other keys; detaching leaves the container be
    tmux.window("exec", f"{CLI} exec -it --detach-keys ctrl-x,x {name} sh")
    assert tmux.shows("exec", "/ #"), tmux.screen("exec")
    tmux.keys("exec", "C-x", "x")
    assert tmux.rc("exec") == 0, tmux.screen("exec")
    assert state(name) == "running 0"

    # attach to the same shell: its earlier output is not replayed, new input works,
    # and `exit 7` ends attach with the container's status
    tmux.window("attach", f"{CLI} attach {name}")
    tmux.keys("attach", "echo again-$((5+5))", "Enter")
    assert tmux.shows("attach", "again-10"), tmux.screen("attach")
    tmux.keys("attach", "exit 7", "Enter")
    assert tmux.rc("attach") == 7, tmux.screen("attach")
    assert wait_for(lambda: state(name) == "exited 7")

    # start -ai of the exited container runs it again, attached
    tmux.window("start", f"{CLI} start -ai {name}")
    assert tmux.shows("start", "/ #"), tmux.screen("start")
    tmux.keys("start", "exit 5", "Enter")
    assert tmux.rc("start") == 5, tmux.screen("start")
    assert wait_for(lambda: state(name) == "exited 5")


def raw_attach(container: str, query: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(SOCKET)
    s.sendall(f"POST /v1.41/containers/{container}/attach?{query} HTTP/1.1\r\nHost: x\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0] or b" 200 " in head.split(b"\r\n")[0], head
    return s


def closed(s: socket.socket) -> bool:
    """Read until the daemon closes the connection (the socket's timeout bounds it)."""
    try:
        while s.recv(4096):
            pass
    except TimeoutError:
        return False
    return True


def test_api_detach_keys(busybox: str, name: str) -> None:
    sdc("run", "-dit", "--name", name, busybox, "sh", check=True)
    # docker's default keys, then custom ones: the daemon closes the attach connection
    for query, keys in (("stream=1&stdin=1&stdout=1", b"\x10\x11"),
                        ("stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,y", b"\x18y")):
        s = raw_attach(name, query)
        s.sendall(b"echo x\n" + keys)
        assert closed(s), query
        s.close()
        assert state(name) == "running 0"
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                        "--unix-socket", SOCKET,
                        f"http://x/v1.41/containers/{name}/attach?stream=1&stdin=1&"
                        "detachKeys=ctrl-1"], capture_output=True, text=True, timeout=30)
    assert r.stdout == "400"
