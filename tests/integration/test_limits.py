"""Resource limits are systemd's: memory, pids, and they survive daemon-reload."""

from __future__ import annotations

import json

from .conftest import sdc, sh, systemctl, unit_property


def cgroup_file(name: str, controller: str, filename: str) -> str:
    cg = unit_property(f"sdcontainer-{name}.scope", "ControlGroup")
    for root in (f"/sys/fs/cgroup/{controller}", "/sys/fs/cgroup"):
        try:
            with open(f"{root}{cg}/{filename}") as f:
                return f.read().strip()
        except OSError:
            continue
    raise AssertionError(f"no {filename} for {cg}")


def test_memory_limit_kills_an_allocator(busybox: str, name: str) -> None:
    r = sdc("run", "--name", name, "-m", "32m", busybox, "dd", "if=/dev/zero", "of=/dev/null",
            "bs=128M", "count=1")
    assert r.returncode == 137, r.stderr
    st = json.loads(sdc("inspect", name).stdout)[0]["State"]
    assert st["OOMKilled"] is True
    assert st["ExitCode"] == 137


def test_the_oom_killer_picks_the_workload_not_the_monitor(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "100", check=True)
    pid = json.loads(sdc("inspect", name).stdout)[0]["State"]["Pid"]
    monitor = sh("ps", "-o", "ppid=", "-p", str(pid)).stdout.strip()
    with open(f"/proc/{monitor}/comm") as f:
        assert f.read().strip() == "sdc-monitor"
    with open(f"/proc/{monitor}/oom_score_adj") as f:
        monitor_adj = int(f.read())
    workload = int(sdc("exec", name, "cat", "/proc/1/oom_score_adj").stdout)
    session = int(sdc("exec", name, "cat", "/proc/self/oom_score_adj").stdout)
    # -1000 for the monitor and 0 for the rest where root may lower scores; otherwise
    # the monitor keeps 0 and the container's processes take the maximum.
    assert (monitor_adj, workload, session) in ((-1000, 0, 0), (0, 1000, 1000))


def test_under_the_limit_is_fine(busybox: str) -> None:
    r = sdc("run", "--rm", "-m", "64m", busybox, "dd", "if=/dev/zero", "of=/dev/null",
            "bs=8M", "count=1")
    assert r.returncode == 0, r.stderr


def test_pids_limit_refuses_forks(busybox: str) -> None:
    r = sdc("run", "--rm", "--pids-limit", "6", busybox, "sh", "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; wait")
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr, r.stderr


def test_daemon_reload_keeps_limits(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, "-m", "48m", "--pids-limit", "40", busybox, "sleep", "100",
        check=True)
    before = cgroup_file(name, "memory", "memory.limit_in_bytes")
    assert before == str(48 * 1024 * 1024)
    systemctl("daemon-reload", check=True)
    assert unit_property(f"sdcontainer-{name}.scope", "MemoryMax") == str(48 * 1024 * 1024)
    assert cgroup_file(name, "memory", "memory.limit_in_bytes") == before
    assert cgroup_file(name, "pids", "pids.max") == "40"
    assert sh("systemctl", "is-active", f"sdcontainer-{name}.scope").stdout.strip() == "active"


def test_cpu_shares_and_memory_swap_reach_the_scope(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, "-m", "64m", "--memory-swap", "96m", "--cpu-shares", "512",
        busybox, "sleep", "100", check=True)
    scope = f"sdcontainer-{name}.scope"
    # docker's shares as systemd's weight (as runc maps them): 512 -> 20.
    assert unit_property(scope, "CPUWeight") == "20"
    # docker counts memory and swap together, systemd swap alone.
    assert unit_property(scope, "MemorySwapMax") == str(32 * 1024 * 1024)
    info = json.loads(sdc("inspect", name, check=True).stdout)[0]["HostConfig"]
    assert (info["CpuShares"], info["MemorySwap"]) == (512, 96 * 1024 * 1024)
    r = sdc("run", "--rm", "-m", "64m", "--memory-swap", "32m", busybox, "true")
    assert r.returncode == 125 and "memoryswap limit should be larger" in r.stderr, r.stderr
