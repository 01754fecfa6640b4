"""Containers as scopes: create, start, stop, kill, wait, rm, as docker users drive them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from .conftest import VENV_BIN, sdc, sh, systemctl, unit_property, wait_for


def state(name: str) -> dict:  # type: ignore[type-arg]
    r = sdc("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["State"]  # type: ignore[no-any-return]


def test_detached_then_ps(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--name", name, busybox, "sleep", "100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    assert cid[:12] in sdc("ps", "-q").stdout.split()
    ps = sdc("ps").stdout
    assert name in ps and "Up " in ps
    rows = [json.loads(line) for line in sdc("ps", "--format", "json").stdout.splitlines()]
    assert any(row["Names"] == name and row["State"] == "running" for row in rows)


def test_scope_properties(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--name", name, "--stop-timeout", "3", "--stop-signal", "SIGUSR1",
            "-m", "64m", "--pids-limit", "50", "--cpus", "0.5", busybox, "sleep", "100")
    assert r.returncode == 0, r.stderr
    unit = f"sdcontainer-{name}.scope"
    props = dict(line.split("=", 1) for line in sh(
        "systemctl", "show", unit, "-p", "ActiveState,Slice,Delegate,KillSignal,TimeoutStopUSec,"
        "SendSIGKILL,MemoryMax,CPUQuotaPerSecUSec,TasksMax,CollectMode,ControlGroup,"
        "DefaultDependencies").stdout.splitlines())
    assert props["ActiveState"] == "active"
    assert props["Slice"] == f"sdcontainer-{name.replace('-', chr(92) + 'x2d')}.slice"
    assert props["ControlGroup"].startswith("/sdcontainer.slice/sdcontainer-")
    assert props["Delegate"] == "yes"
    assert props["KillSignal"] == str(int(signal.SIGUSR1))
    assert props["TimeoutStopUSec"] == "3s"
    assert props["SendSIGKILL"] == "yes"
    assert props["MemoryMax"] == str(64 * 1024 * 1024)
    assert props["CPUQuotaPerSecUSec"] == "500ms"
    assert props["TasksMax"] == "50"
    assert props["CollectMode"] == "inactive-or-failed"
    assert props["DefaultDependencies"] == "no"
    assert "shutdown.target" in unit_property(unit, "Conflicts")
    assert unit_property(f"sdcontainer-{name.replace('-', chr(92) + 'x2d')}.slice",
                         "Slice") == "sdcontainer.slice"


def test_workload_is_in_the_scope(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "100").returncode == 0
    pid = state(name)["Pid"]
    assert pid > 0
    with open(f"/proc/{pid}/cgroup") as f:
        assert any(line.rstrip().endswith(f"/sdcontainer-{name}.scope") for line in f)
    # Children it spawns are accounted there too.
    r = sdc("exec", name, "sh", "-c", "cat /proc/self/cgroup")
    assert f"sdcontainer-{name}.scope" in r.stdout


def test_stop_of_handler_is_fast(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c",
        "trap 'exit 0' TERM; echo trapped; while true; do sleep 0.1; done", check=True)
    assert wait_for(lambda: "trapped" in sdc("logs", name).stdout)  # the handler is set
    t0 = time.monotonic()
    r = sdc("stop", name)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0 and r.stdout.strip() == name, r.stderr
    assert elapsed < 3
    st = state(name)
    assert st["Status"] == "exited" and st["ExitCode"] == 0


def test_stop_of_ignorer_takes_the_timeout_then_137(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, "--stop-timeout", "2", busybox, "sleep", "100", check=True)
    t0 = time.monotonic()
    assert sdc("stop", name).returncode == 0
    elapsed = time.monotonic() - t0
    assert 1.5 < elapsed < 8
    assert state(name)["ExitCode"] == 137
    assert unit_property(f"sdcontainer-{name}.scope", "ActiveState") in ("inactive", "")


def test_stop_t_overrides_the_timeout(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
    t0 = time.monotonic()
    assert sdc("stop", "-t", "1", name).returncode == 0
    assert time.monotonic() - t0 < 5
    assert state(name)["ExitCode"] == 137


def test_kill_hup_reaches_a_handler(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c",
        "trap 'echo got-hup' HUP; echo trapped; while true; do sleep 0.1; done", check=True)
    assert wait_for(lambda: "trapped" in sdc("logs", name).stdout)  # the handler is set
    assert sdc("kill", "-s", "HUP", name).returncode == 0
    assert wait_for(lambda: "got-hup" in sdc("logs", name).stdout)
    assert state(name)["Running"]
    assert sdc("kill", name).returncode == 0
    assert sdc("wait", name).stdout.strip() == "137"


def test_init_forwards_sigterm(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, "--init", "--stop-timeout", "20", busybox, "sleep", "100",
        check=True)
    # The init has started its child: the signal must reach the workload, not a fork.
    assert wait_for(lambda: "sleep 100" in sdc("top", name).stdout)
    t0 = time.monotonic()
    assert sdc("stop", name).returncode == 0
    assert time.monotonic() - t0 < 5
    assert state(name)["ExitCode"] == 143


def zombies(name: str) -> int:
    out = sdc("exec", name, "ps", "-o", "stat").stdout.split()
    return sum(1 for s in out if s.startswith("Z"))


def test_init_reaps_zombies(busybox: str, name: str) -> None:
    orphan_maker = "(sleep 0.2 &); exec sleep 100"
    sdc("run", "-d", "--name", name, "--init", busybox, "sh", "-c", orphan_maker, check=True)
    other = name + "-noinit"
    try:
        sdc("run", "-d", "--name", other, busybox, "sh", "-c", orphan_maker, check=True)
        # Without an init, nobody reaps the orphan once it exits (after 0.2 s; both
        # containers' orphans are gone by then, this one's having started first).
        assert wait_for(lambda: zombies(other) == 1)
        assert zombies(name) == 0
    finally:
        sdc("rm", "-f", other)


def test_systemctl_stop_is_recorded(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c",
        "trap 'exit 42' TERM; echo trapped; while true; do sleep 0.1; done", check=True)
    assert wait_for(lambda: "trapped" in sdc("logs", name).stdout)  # the handler is set
    systemctl("stop", f"sdcontainer-{name}.scope", check=True)
    assert wait_for(lambda: state(name)["Status"] == "exited")
    assert state(name)["ExitCode"] == 42
    assert name in sdc("ps", "-a").stdout
    assert name not in sdc("ps").stdout


def test_systemctl_kill_is_recorded(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
    systemctl("kill", "-s", "KILL", f"sdcontainer-{name}.scope", check=True)
    assert wait_for(lambda: state(name)["Status"] == "exited")
    assert state(name)["ExitCode"] == 137


def test_create_start_restart_rm(busybox: str, name: str) -> None:
    r = sdc("create", "--name", name, busybox, "sleep", "100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert state(name)["Status"] == "created"
    assert unit_property(f"sdcontainer-{name}.scope", "LoadState") != "loaded"
    assert sdc("start", name).returncode == 0
    pid1 = state(name)["Pid"]
    assert sdc("restart", "-t", "0", name).returncode == 0
    st = state(name)
    assert st["Running"] and st["Pid"] != pid1
    r = sdc("rm", name)
    assert r.returncode == 1 and "running" in r.stderr
    assert sdc("rm", "-f", name).returncode == 0
    assert sdc("inspect", name).returncode == 1
    assert not os.path.exists(f"/var/lib/sdcontainer/containers/{cid}")
    assert unit_property(f"sdcontainer-{name}.scope", "ActiveState") in ("inactive", "")


def test_rm_removes_the_files(busybox: str, name: str) -> None:
    cid = sdc("create", "--name", name, busybox, "true", check=True).stdout.strip()
    assert os.path.isdir(f"/var/lib/sdcontainer/containers/{cid}")
    assert sdc("start", "-a", name).returncode == 0
    assert sdc("rm", name).returncode == 0
    assert not os.path.exists(f"/var/lib/sdcontainer/containers/{cid}")
    assert not os.path.exists(f"/run/sdcontainer/containers/{cid}")


def test_run_rm_leaves_nothing(busybox: str, name: str) -> None:
    r = sdc("run", "--rm", "--name", name, busybox, "sh", "-c", "echo out; echo err >&2; exit 4")
    assert r.returncode == 4
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert sdc("inspect", name).returncode == 1
    assert unit_property(f"sdcontainer-{name}.scope", "LoadState") != "loaded"


def test_wait(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c", "sleep 0.5; exit 9", check=True)
    r = sdc("wait", name)
    assert r.stdout.strip() == "9"


def test_name_reuse_after_failure(busybox: str, name: str) -> None:
    assert sdc("run", "--name", name, "-m", "8m", busybox, "dd", "if=/dev/zero", "of=/dev/null",
               "bs=64M", "count=1").returncode == 137
    assert sdc("rm", name).returncode == 0
    assert sdc("run", "--rm", "--name", name, busybox, "true").returncode == 0


def test_ctrl_c_is_forwarded(busybox: str, name: str) -> None:
    proc = subprocess.Popen(
        [str(VENV_BIN / "sdcontainer"), "run", "--rm", "--name", name, busybox, "sh", "-c",
         "trap 'echo bye; exit 7' INT; echo ready; while true; do sleep 0.1; done"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert "bye" in out
    assert proc.returncode == 7
