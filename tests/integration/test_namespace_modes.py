"""Namespaces joined by path (ns:/PATH), PidMode host and container:, UTSMode container:,
and CgroupParent (issue 18; the CRI service's pods are built on these)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import sdc, sh, systemctl, unit_property, wait_for

KINDS = ("net", "ipc", "uts")


@pytest.fixture
def pinned() -> Iterator[Path]:
    """A network, IPC and UTS namespace (host name podhost) held by bind mounts in a
    directory on /run, as `unshare --net=FILE` leaves them; unmounted afterwards."""
    d = Path(f"/run/sdc-ns-{uuid.uuid4().hex[:8]}")
    d.mkdir()
    for kind in KINDS:
        (d / kind).touch()
    try:
        sh("unshare", *(f"--{kind}={d / kind}" for kind in KINDS), "hostname", "podhost")
        yield d
    finally:
        for kind in KINDS:
            sh("umount", str(d / kind), check=False)
        sh("rm", "-rf", str(d))


@pytest.fixture
def names() -> Iterator[Callable[[], str]]:
    """Fresh container names, each removed (forcibly) after the test."""
    made: list[str] = []

    def new() -> str:
        made.append(f"t-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield new
    for n in reversed(made):
        sdc("rm", "-f", n)


def ok(*args: str) -> str:
    r = sdc(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def inspect(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ok("inspect", name))[0]
    return doc


def scope_gone(name: str) -> bool:
    return unit_property(f"sdcontainer-{name}.scope", "LoadState") == "not-found"


NS_SCRIPT = "stat -L -c %i /proc/1/ns/net /proc/1/ns/ipc /proc/1/ns/uts; hostname"


def test_join_namespaces_by_path(busybox: str, pinned: Path,
                                 names: Callable[[], str]) -> None:
    flags = ["--network", f"ns:{pinned}/net", "--ipc", f"ns:{pinned}/ipc",
             "--uts", f"ns:{pinned}/uts"]
    want = [str(os.stat(pinned / kind).st_ino) for kind in KINDS] + ["podhost"]
    a = names()
    ok("run", "-d", "--name", a, *flags, busybox, "sleep", "300")
    assert ok("exec", a, "sh", "-c", NS_SCRIPT).split() == want
    # A second container shares them all; our /etc files are still written, and the
    # namespace holds no interface of ours (no veth, no address): lo alone.
    out = ok("run", "--rm", "--dns", "10.9.9.9", "--hostname", "inner", *flags, busybox,
             "sh", "-c", f"{NS_SCRIPT}; cat /etc/resolv.conf /etc/hostname; "
             "tail -n +3 /proc/net/dev | cut -d: -f1").split()
    assert out[:4] == want
    assert "10.9.9.9" in out and "inner" in out and out[-1] == "lo", out
    hc = inspect(a)["HostConfig"]
    assert (hc["NetworkMode"], hc["IpcMode"], hc["UTSMode"]) == (
        f"ns:{pinned}/net", f"ns:{pinned}/ipc", f"ns:{pinned}/uts")


def test_missing_namespace_path_fails_cleanly(busybox: str, tmp_path: Path,
                                              names: Callable[[], str]) -> None:
    gone = names()
    r = sdc("run", "--name", gone, "--network", "ns:/run/no-such-ns/net", busybox, "true")
    assert r.returncode == 125 and "/run/no-such-ns/net" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sdc("inspect", gone).returncode != 0 and scope_gone(gone)
    # A path that was there at create and is gone at start: the start fails, nothing made.
    uts = Path(f"/run/sdc-uts-{uuid.uuid4().hex[:8]}")
    uts.touch()
    try:
        sh("unshare", f"--uts={uts}", "true")
        later = names()
        ok("create", "--name", later, "--uts", f"ns:{uts}", busybox, "true")
    finally:
        sh("umount", str(uts), check=False)
        uts.unlink()
    r = sdc("start", later)
    assert r.returncode != 0 and str(uts) in r.stderr, r.stderr
    assert scope_gone(later)
    assert inspect(later)["State"]["Running"] is False
    # A --rm container whose start is refused before its monitor exists is removed,
    # as dockerd removes an AutoRemove container whose start failed.
    stopped, doomed = names(), names()
    ok("create", "--name", stopped, busybox, "true")
    r = sdc("run", "--rm", "--name", doomed, "--pid", f"container:{stopped}", busybox, "true")
    assert r.returncode == 125 and stopped in r.stderr, r.stderr
    assert sdc("inspect", doomed).returncode != 0 and scope_gone(doomed)


def test_pid_and_uts_modes(busybox: str, names: Callable[[], str]) -> None:
    assert ok("run", "--rm", "--pid", "host", busybox, "cat", "/proc/1/comm") == "systemd"
    # --init runs tini as a subreaper (it is not PID 1); the exit status comes through.
    r = sdc("run", "--rm", "--init", "--pid", "host", busybox, "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    a = names()
    ok("run", "-d", "--name", a, "--hostname", "hosta", busybox, "sleep", "301")
    assert "sleep" in ok("run", "--rm", "--pid", f"container:{a}", busybox, "cat",
                         "/proc/1/cmdline")
    b = names()
    ok("create", "--name", b, "--uts", f"container:{a}", busybox, "hostname")
    assert ok("start", "-a", b) == "hosta"
    assert inspect(b)["HostConfig"]["UTSMode"] == f"container:{a}"
    assert inspect(b)["Config"]["Hostname"] == "hosta"
    # exec, top and stop work on a container in the host's pid namespace.
    c = names()
    ok("run", "-d", "--name", c, "--pid", "host", busybox, "sleep", "302")
    assert inspect(c)["HostConfig"]["PidMode"] == "host"
    assert ok("exec", c, "cat", "/proc/1/comm") == "systemd"
    assert "sleep 302" in ok("top", c)
    ok("stop", "-t", "2", c)
    assert wait_for(lambda: scope_gone(c))
    assert inspect(c)["State"]["Running"] is False


def test_cgroup_parent(busybox: str, names: Callable[[], str]) -> None:
    n = names()
    scope = f"sdcontainer-{n}.scope"
    try:
        ok("run", "-d", "--name", n, "--cgroup-parent", "test-pod1.slice", busybox,
           "sleep", "300")
        cgroup = ok("exec", n, "cat", "/proc/1/cgroup").splitlines()[-1]
        assert cgroup.endswith(f"/test.slice/test-pod1.slice/{scope}"), cgroup
        assert unit_property(scope, "Slice") == "test-pod1.slice"
        # systemd loads any slice name it is asked about: never started is what counts.
        assert unit_property(f"sdcontainer-{n}.slice", "ActiveState") == "inactive"
        doc = inspect(n)
        assert doc["HostConfig"]["CgroupParent"] == "test-pod1.slice"
        assert doc["Systemd"]["Slice"] == "test-pod1.slice"
        ok("rm", "-f", n)
        assert wait_for(lambda: scope_gone(n))
        # Not ours: the pod's slice stays.
        assert unit_property("test-pod1.slice", "ActiveState") == "active"
    finally:
        systemctl("stop", "test-pod1.slice")
