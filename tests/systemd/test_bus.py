"""systemd through the daemon's one bus connection (sdcontainer/systemd/bus.py, units.py).

Each test drives the real systemd of the box and checks what systemd then says,
with systemctl; waits are the code's own (signals), never a sleep.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import pytest

from sdcontainer import paths
from sdcontainer.errors import NotFound
from sdcontainer.systemd import bus, units
from tests.integration.conftest import systemctl, unit_property

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Run CORO on a fresh loop, and close the loop's connection after it."""
    async def go() -> T:
        try:
            return await coro
        finally:
            bus.close()
    return asyncio.run(go())


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process to put in a scope."""
    p = subprocess.Popen(["sleep", "300"])
    yield p
    p.kill()
    p.wait()


@pytest.fixture
def cname() -> Iterator[str]:
    """A fresh container name; its scope and slice are gone after the test."""
    n = f"bus-{uuid.uuid4().hex[:8]}"
    yield n
    for u in (paths.scope_name(n), units.slice_for(n)):
        systemctl("stop", u)
        systemctl("reset-failed", u)


def cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read().strip()


def test_scope_exists_with_its_properties_when_start_scope_returns(
        sleeper: subprocess.Popen[bytes], cname: str) -> None:
    limits = units.ScopeLimits(kill_signal=signal.SIGINT, stop_timeout_s=3,
                               memory_max=64 << 20, cpu_quota_per_sec_us=500_000, tasks_max=17,
                               device_policy="closed", device_allow=(("/dev/null", "rw"),))

    async def go() -> tuple[str, str]:
        await units.start_scope(cname, sleeper.pid, f"test {cname}", limits)
        # No wait of our own: start_scope returned after the job's JobRemoved.
        return await units.active_state(paths.scope_name(cname)), cgroup_of(sleeper.pid)

    state, cgroup = run(go())
    scope = paths.scope_name(cname)
    assert state == "active"
    # The process was moved into the scope before start_scope returned.
    assert cgroup.endswith(f"/{scope}"), cgroup
    expect = {
        "ActiveState": "active", "Description": f"test {cname}",
        "Slice": units.slice_for(cname), "Delegate": "yes", "KillSignal": "2",
        "SendSIGKILL": "yes", "TimeoutStopUSec": "3s", "CollectMode": "inactive-or-failed",
        "MemoryMax": str(64 << 20), "CPUQuotaPerSecUSec": "500ms", "TasksMax": "17",
        "DevicePolicy": "closed", "DeviceAllow": "/dev/null rw",
    }
    for prop, value in expect.items():
        assert unit_property(scope, prop) == value, prop
    for prop, value in (("Conflicts", "shutdown.target"), ("Before", "shutdown.target"),
                        ("After", "sdcontainerd.service")):
        assert value in unit_property(scope, prop).split(), prop
    assert "sysinit.target" not in unit_property(scope, "After").split()


def test_wait_gone_returns_when_the_unit_goes(sleeper: subprocess.Popen[bytes],
                                              cname: str) -> None:
    scope = paths.scope_name(cname)

    async def go() -> tuple[bool, float, bool, float]:
        await units.start_scope(cname, sleeper.pid, "test", units.ScopeLimits())
        # Still there at the deadline: False, after the deadline and not long after.
        t0 = time.monotonic()
        early = await units.wait_gone(scope, 0.3)
        waited = time.monotonic() - t0
        # The scope's last process dies: systemd removes the unit, and says so.
        waiter = asyncio.ensure_future(units.wait_gone(scope, 30))
        t1 = time.monotonic()
        sleeper.kill()
        gone = await waiter
        return early, waited, gone, time.monotonic() - t1

    early, waited, gone, took = run(go())
    assert early is False and 0.3 <= waited < 3
    assert gone is True and took < 5
    assert unit_property(scope, "ActiveState") == "inactive"
    assert unit_property(scope, "LoadState") == "not-found"


def test_wait_gone_of_a_missing_unit_is_immediate() -> None:
    t0 = time.monotonic()
    assert run(units.wait_gone("sdcontainer-never-was.scope", 30)) is True
    assert time.monotonic() - t0 < 5


def test_release_stops_the_slice(sleeper: subprocess.Popen[bytes], cname: str) -> None:
    async def go() -> None:
        await units.start_scope(cname, sleeper.pid, "test", units.ScopeLimits())
        await units.kill(paths.scope_name(cname), signal.SIGKILL)
        await units.release(cname)

    run(go())
    scope = paths.scope_name(cname)
    assert unit_property(scope, "LoadState") == "not-found"
    # (systemctl's LoadUnit gives a slice without a file a "loaded" stub: look at its state.)
    assert unit_property(units.slice_for(cname), "ActiveState") == "inactive"


def test_errors_for_a_missing_unit_are_not_found() -> None:
    missing = f"sdcontainer-missing-{uuid.uuid4().hex[:8]}.scope"

    async def go() -> list[Exception]:
        out: list[Exception] = []
        for call in (units.kill(missing, signal.SIGTERM), units.freeze(missing)):
            try:
                await call
            except Exception as e:  # collected, checked below
                out.append(e)
        return out

    errors = run(go())
    assert len(errors) == 2
    assert all(isinstance(e, NotFound) for e in errors), errors
    assert str(errors[0]).startswith(f"cannot kill {missing}: ")
