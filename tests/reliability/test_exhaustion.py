"""Resource exhaustion: memory, pids, a full state filesystem, and no leaks."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from tests.integration.conftest import sdc, sh, unit_property, wait_for

from .api import UnixHTTP, call
from .helpers import STATE, check_invariants, inspect, main_pid


def collect_events(stop: threading.Event, out: list[dict[str, object]],
                   ready: threading.Event | None = None) -> None:
    conn = UnixHTTP(timeout=60)
    conn.request("GET", "/events")
    r = conn.getresponse()
    if ready is not None:
        ready.set()  # the daemon subscribes before it sends the head: nothing is missed
    while not stop.is_set():
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if line.startswith(b"{"):
            out.append(json.loads(line))
        else:
            # Chunked framing: the JSON is on the line after the size.
            continue
    conn.close()


def test_oom_is_recorded(busybox: str, name: str) -> None:
    events: list[dict[str, object]] = []
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=collect_events, args=(stop, events, ready), daemon=True)
    t.start()
    assert ready.wait(10), "no answer to GET /events"
    r = sdc("run", "--name", name, "-m", "32m", "--network", "none", busybox,
            "sh", "-c", "tail /dev/zero")
    assert r.returncode == 137, r.stderr
    st = inspect(name)["State"]  # type: ignore[index]
    assert st["OOMKilled"] is True and st["ExitCode"] == 137, st
    assert wait_for(lambda: any(e.get("Action") == "oom" and
                                e.get("Actor", {}).get("Attributes", {}).get("name") == name  # type: ignore[attr-defined]
                                for e in events), 5), events
    stop.set()


def pids_max_events(scope: str) -> int:
    """How often the pids controller refused SCOPE a fork (0 if it cannot be read)."""
    cgroup = unit_property(scope, "ControlGroup")
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/pids"):  # unified, or hybrid's v1
        try:
            text = Path(f"{base}{cgroup}/pids.events").read_text()
        except OSError:
            continue
        return int(dict(line.split() for line in text.splitlines()).get("max", 0))
    return 0


def test_fork_bomb_stops_at_pids_limit(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, "--pids-limit", "40", "--network", "none", busybox,
               "sh", "-c", "b() { b | b & }; b; sleep 1000").returncode == 0
    scope = f"sdcontainer-{name}.scope"
    # The bomb has hit the limit once the kernel refused it a fork (pids.events max).
    assert wait_for(lambda: pids_max_events(scope) > 0, timeout=20)
    tasks = int(unit_property(scope, "TasksCurrent") or 0)
    assert 0 < tasks <= 40, tasks
    t0 = time.monotonic()
    assert sdc("ps").returncode == 0
    assert sh("true").returncode == 0
    assert time.monotonic() - t0 < 5, "the box is not responsive"
    assert sdc("rm", "-f", name, timeout=60).returncode == 0
    check_invariants()


def test_full_state_filesystem(busybox: str, name: str) -> None:
    mnt = str(STATE)
    assert sh("findmnt", "-n", "-o", "FSTYPE", mnt).stdout.strip() == "tmpfs"
    old_size = sh("findmnt", "-n", "-o", "SIZE", "-b", mnt).stdout.strip()
    used = int(sh("df", "-B1", "--output=used", mnt).stdout.split()[-1])
    filler = STATE / "filler"
    sh("mount", "-o", f"remount,size={used + (4 << 20)}", mnt)
    made: list[str] = []
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        for i in range(20):
            r = sdc("create", "--name", f"{name}-{i}", busybox, "true")
            if r.returncode != 0:
                break
            made.append(f"{name}-{i}")
        assert r.returncode == 125, "creates succeeded on a full filesystem"
        assert "No space left on device" in r.stderr and "Traceback" not in r.stderr, r.stderr
        for d in (STATE / "containers").iterdir():
            json.loads((d / "container.json").read_text())
    finally:
        filler.unlink(missing_ok=True)
        sh("mount", "-o", f"remount,size={old_size}", mnt)
    assert sdc("run", "--rm", "--network", "none", busybox, "true").returncode == 0
    for n in made:
        sdc("rm", "-f", n)
    check_invariants()


def rss_and_fds(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def create_rm(conn: UnixHTTP, busybox: str, n: int, run: bool = False) -> None:
    for _ in range(n):
        body = {"Image": busybox, "Cmd": ["true"],
                "HostConfig": {"NetworkMode": "none", "AutoRemove": run}}
        status, data = call(conn, "POST", "/containers/create", body)
        assert status == 201, data
        cid = json.loads(data)["Id"]
        if run:
            status, data = call(conn, "POST", f"/containers/{cid}/start")
            assert status == 204, data
            status, data = call(conn, "POST", f"/containers/{cid}/wait?condition=removed")
            assert status in (200, 404), data
        else:
            status, data = call(conn, "DELETE", f"/containers/{cid}")
            assert status == 204, data


def test_no_leak_over_1000_containers(busybox: str) -> None:
    conn = UnixHTTP()
    pid = main_pid()
    create_rm(conn, busybox, 100)
    create_rm(conn, busybox, 20, run=True)
    rss0, fds0 = rss_and_fds(pid)
    create_rm(conn, busybox, 1000)
    create_rm(conn, busybox, int(os.environ.get("SDCONTAINER_RUN_CYCLES", "100")), run=True)
    rss1, fds1 = rss_and_fds(pid)
    conn.close()
    assert main_pid() == pid
    assert fds1 - fds0 <= 3, (fds0, fds1)
    assert rss1 - rss0 < 12 * 1024, f"RSS grew from {rss0} to {rss1} kB"
    check_invariants()
