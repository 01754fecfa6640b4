"""pause/unpause: systemd's freezer where the host's cgroups allow, a clear error where not."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.integration.conftest import sdc, unit_property

UNIFIED = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.mark.skipif(UNIFIED, reason="this host's cgroups can freeze")
def test_pause_refused_on_hybrid_host(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    r = sdc("pause", name)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"cannot pause container {name}" in lines[0]
    assert "cgroups cannot freeze" in lines[0] and "hybrid" in lines[0]
    r = sdc("unpause", name)
    assert r.returncode == 1 and "cannot unpause" in r.stderr
    time.sleep(0.2)
    info = json.loads(sdc("inspect", name).stdout)[0]
    assert info["State"]["Running"] and not info["State"]["Paused"]
    assert unit_property(f"sdcontainer-{name}.scope", "ActiveState") == "active"
    assert sdc("exec", name, "true").returncode == 0  # still running and answering


@pytest.mark.skipif(not UNIFIED, reason="this host's cgroups cannot freeze")
def test_pause_freezes(busybox: str, name: str) -> None:
    assert sdc("run", "-d", "--name", name, busybox, "sleep", "1000").returncode == 0
    assert sdc("pause", name).returncode == 0
    assert unit_property(f"sdcontainer-{name}.scope", "FreezerState") == "frozen"
    assert sdc("unpause", name).returncode == 0
    assert unit_property(f"sdcontainer-{name}.scope", "FreezerState") == "running"


def test_pause_stopped_container(busybox: str, name: str) -> None:
    assert sdc("create", "--name", name, busybox, "true").returncode == 0
    r = sdc("pause", name)
    assert r.returncode == 1 and "is not running" in r.stderr
