"""The daemon can restart: running containers keep running, exit codes are kept."""

from __future__ import annotations

import json
import os

from .conftest import SOCKET, sdc, sh, systemctl, unit_property, wait_for


def restart_daemon() -> None:
    systemctl("restart", "sdcontainerd.service", check=True)
    assert wait_for(lambda: os.path.exists(SOCKET) and sdc("ps").returncode == 0)


def test_restart_keeps_running_containers(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c",
        "trap 'exit 3' TERM; while true; do sleep 0.1; done", check=True)
    pid = json.loads(sdc("inspect", name).stdout)[0]["State"]["Pid"]
    restart_daemon()
    st = json.loads(sdc("inspect", name).stdout)[0]["State"]
    assert st["Running"] and st["Pid"] == pid
    assert unit_property(f"sdcontainer-{name}.scope", "ActiveState") == "active"
    assert sdc("stop", name).returncode == 0
    assert json.loads(sdc("inspect", name).stdout)[0]["State"]["ExitCode"] == 3


def test_exit_while_daemon_down(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c", "sleep 1; exit 12", check=True)
    systemctl("stop", "sdcontainerd.service", check=True)
    # The workload exits (after its sleep 1) while the daemon is down.
    assert wait_for(lambda: unit_property(f"sdcontainer-{name}.scope", "ActiveState")
                    in ("inactive", ""), timeout=10)
    systemctl("start", "sdcontainerd.service", check=True)
    assert wait_for(lambda: sdc("ps").returncode == 0)
    st = json.loads(sdc("inspect", name).stdout)[0]["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 12


def test_rm_container_removed_while_down(busybox: str, name: str) -> None:
    sdc("run", "-d", "--rm", "--name", name, busybox, "sh", "-c", "sleep 1", check=True)
    systemctl("stop", "sdcontainerd.service", check=True)
    assert wait_for(lambda: unit_property(f"sdcontainer-{name}.scope", "ActiveState")
                    in ("inactive", ""), timeout=10)
    systemctl("start", "sdcontainerd.service", check=True)
    assert wait_for(lambda: sdc("ps").returncode == 0)
    assert sdc("inspect", name).returncode == 1


def test_daemon_is_notify_and_api_answers(daemon: None) -> None:
    assert unit_property("sdcontainerd.service", "Type") == "notify"
    assert unit_property("sdcontainerd.service", "ActiveState") == "active"
    r = sh("curl", "-s", "--unix-socket", SOCKET, "http://d/_ping", check=False)
    if r.returncode == 0:
        assert r.stdout == "OK"
    v = json.loads(sdc("version").returncode == 0 and sh(
        "python3", "-c", "import http.client,socket,sys\n"
        "class C(http.client.HTTPConnection):\n"
        "  def connect(self):\n"
        "    self.sock=socket.socket(socket.AF_UNIX); self.sock.connect(sys.argv[1])\n"
        "c=C('x'); c.request('GET','/v1.41/version'); print(c.getresponse().read().decode())",
        SOCKET).stdout)
    assert v["ApiVersion"] == "1.43"
    mode = os.stat(SOCKET).st_mode & 0o777
    assert mode == 0o660
