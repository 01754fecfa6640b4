"""Management commands, events (since, until, filters, docker's line), stats numbers."""

from __future__ import annotations

import re
import signal
import subprocess
import time

from tests.api.apiutil import docker
from tests.integration.conftest import VENV_BIN, sdc, wait_for


def test_management_commands_events_and_stats(busybox: str, name: str) -> None:
    t0 = f"{time.time() - 1:.3f}"
    sdc("run", "-d", "--name", name, "-m", "64m", busybox, "sleep", "300", check=True)
    # docker's management grammar maps onto the same verbs
    assert name in sdc("container", "ls", "--format", "{{.Names}}").stdout
    assert sdc("container", "inspect", "-f", "{{.Name}}", name).stdout == f"/{name}\n"
    assert sdc("container", "inspect", busybox).returncode != 0  # containers only
    assert sdc("image", "ls", "--format", "{{.Repository}}").stdout.count("busybox") >= 1
    assert sdc("system", "info", "--format", "{{.CgroupDriver}}").stdout == "systemd\n"
    r = sdc("container", "nosuch")
    assert r.returncode != 0 and "Commands:" in r.stderr

    # stats: the scope's own memory and its limit, and an idle container's CPU near 0 even
    # while another one burns a CPU (the host-wide cpuacct root must not be read as its own)
    sdc("run", "-d", "--name", f"{name}-burn", busybox, "sh", "-c", "while :; do :; done",
        check=True)
    try:
        burning = sdc("stats", "--no-stream", "--format", "{{.CPUPerc}}", f"{name}-burn")
        assert float(burning.stdout.strip().rstrip("%")) > 5, burning.stdout
        idle = [tool("stats", "--no-stream", "--format", "{{.CPUPerc}}", name).stdout
                for tool in (sdc, docker)]
    finally:
        sdc("rm", "-f", f"{name}-burn")
    assert all(float(i.strip().rstrip("%")) < 5 for i in idle), idle
    for tool in (sdc, docker):
        r = tool("stats", "--no-stream", "--format",
                 "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}", name)
        assert r.returncode == 0, r.stderr
        cname, cpu, mem, mem_pct, pids = r.stdout.strip().split("|")
        used, limit = mem.split(" / ")
        assert (cname, limit) == (name, "64MiB") and int(pids) >= 1, r.stdout
        assert not used.startswith("0B") and float(cpu.rstrip("%")) < 50, r.stdout
        assert 0 < float(mem_pct.rstrip("%")) < 100, r.stdout
    # streaming: a table per reading until interrupted
    live = subprocess.Popen([str(VENV_BIN / "sdcontainer"), "stats", "--format",
                             "table {{.Name}}\t{{.MemUsage}}", name],
                            stdout=subprocess.PIPE, text=True)
    assert live.stdout is not None
    first = [live.stdout.readline(), live.stdout.readline()]
    live.send_signal(signal.SIGINT)
    live.wait(10)
    assert first[0].split() == ["NAME", "MEM", "USAGE", "/", "LIMIT"], first
    assert first[1].startswith(name) and "/ 64MiB" in first[1], first
    table = sdc("stats", "--no-stream", name).stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/",
                                "LIMIT", "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]

    # events: replayed with --since, bounded by --until, filtered; the same bytes as docker's
    sdc("stop", "-t", "1", name, check=True)
    assert wait_for(lambda: "exited" in sdc("inspect", "-f", "{{.State.Status}}", name).stdout)
    until = f"{time.time():.3f}"
    for args in (["--filter", f"container={name}"],
                 ["--filter", f"container={name}", "--filter", "event=start",
                  "--filter", "event=die"],
                 ["--filter", "type=container", "--filter", f"container={name}", "--format",
                  "{{.Action}} {{.Actor.Attributes.name}} {{json .Type}}"]):
        ours = sdc("events", "--since", t0, "--until", until, *args, timeout=30)
        theirs = docker("events", "--since", t0, "--until", until, *args, timeout=30)
        assert ours.returncode == 0, ours.stderr
        assert ours.stdout == theirs.stdout, (args, ours.stdout, theirs.stdout)
    lines = sdc("events", "--since", t0, "--until", until, "--filter",
                f"container={name}").stdout.splitlines()
    actions = [line.split()[2] for line in lines]
    assert actions[:2] == ["create", "start"] and "die" in actions, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container "
                        rf"create [0-9a-f]{{64}} \(image=busybox, name={name}\)", lines[0])
    assert sdc("events", "--filter", "nonsense=1", "--until", until).returncode != 0


def test_rename_update_prune_and_df(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "300", check=True)
    scope = f"sdcontainer-{name}.scope"
    # update: the running scope's limit and the record, as docker's CLI prints it
    r = sdc("update", "-m", "96m", "--pids-limit", "30", "--restart", "on-failure:2", name)
    assert (r.returncode, r.stdout) == (0, f"{name}\n"), r.stderr
    show = subprocess.run(["systemctl", "show", "-p", "MemoryMax", "-p", "TasksMax", scope],
                          capture_output=True, text=True).stdout
    assert f"MemoryMax={96 << 20}" in show and "TasksMax=30" in show, show
    hc = sdc("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} "
             "{{json .HostConfig.RestartPolicy}}", name).stdout
    assert hc == f'{96 << 20} 30 {{"Name":"on-failure","MaximumRetryCount":2}}\n', hc
    r = sdc("update", name)
    assert r.returncode != 0 and "one or more flags" in r.stderr
    # rename: a stopped container (a running one keeps its scope's name)
    sdc("stop", "-t", "1", name, check=True)
    assert sdc("rename", name, f"{name}-new").returncode == 0
    assert sdc("inspect", "-f", "{{.Name}}", f"{name}-new").stdout == f"/{name}-new\n"
    # system df: the same summary as docker's CLI against the same daemon
    ours, theirs = sdc("system", "df"), docker("system", "df")
    assert ours.returncode == 0 and ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout)
    assert ours.stdout.startswith("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n")
    # container prune: the stopped container goes, reported as docker reports it
    cid = sdc("inspect", "-f", "{{.Id}}", f"{name}-new").stdout.strip()
    r = sdc("container", "prune", "-f", "--filter", f"label!=nothing-{name}")
    assert r.returncode == 0 and f"{cid}\n" in r.stdout and "Total reclaimed space:" in r.stdout
    assert sdc("inspect", f"{name}-new").returncode != 0
