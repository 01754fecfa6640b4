"""Everything sdcontainer asks of systemd's manager, over the daemon's one bus (bus.py).

Each container is a transient scope in its own slice.  The scope is created
with `PIDs=[monitor]` before the workload exists, so every process of the
container is accounted to it from its first instruction.

Every function runs on the daemon's event loop.  Waits are for systemd's
signals (JobRemoved for a job, UnitRemoved or PropertiesChanged for a unit
that goes), each opened before the call that causes it, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import DBusError, Variant

from .. import paths
from ..errors import InvalidArgument, SdcError, SystemdError
from .bus import (
    MANAGER_IFACE,
    PROPERTIES_IFACE,
    SYSTEMD,
    UNIT_IFACE,
    Signal,
    SignalLog,
    SystemBus,
    map_error,
    system_bus,
)

log = logging.getLogger(__name__)

SCOPE_IFACE = "org.freedesktop.systemd1.Scope"
JOB_TIMEOUT = 30.0  # seconds; a transient unit's start job finishes in milliseconds
UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"


def escape(name: str) -> str:
    """Escape NAME for a unit name component, as systemd-escape does.

    A slice's dashes mean nesting ("a-b.slice" lives in "a.slice"): a container
    called "my-app" must get "sdcontainer-my\\x2dapp.slice", not a child of "my".
    """
    return "".join(f"\\x{ord(c):02x}" if c == "-" else c for c in name)


def object_path(unit: str) -> str:
    """UNIT's object path, escaped as sd-bus escapes labels (bus_label_escape)."""
    label = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):02x}"
                    for ch in unit.encode().decode("latin-1"))
    return f"/org/freedesktop/systemd1/unit/{label or '_'}"


@dataclass(frozen=True)
class ScopeLimits:
    """Resource limits and stop behaviour of a container's scope."""

    kill_signal: int = signal.SIGTERM
    stop_timeout_s: int = 10
    memory_max: int = 0  # bytes; 0 = unlimited
    cpu_quota_per_sec_us: int = 0  # 0 = unlimited
    tasks_max: int = 0  # 0 = systemd's default
    device_policy: str = "auto"
    device_allow: tuple[tuple[str, str], ...] = ()
    cpu_weight: int = 0  # 0 = systemd's default
    memory_swap_max: int = -1  # bytes of swap alone; -1 = unlimited


Properties = list[tuple[str, Variant]]
UNLIMITED = 2**64 - 1  # systemd's "infinity" for a uint64 limit


def cpu_weight(shares: int) -> int:
    """docker's CpuShares (cgroup v1 cpu.shares, 2..262144) as systemd's CPUWeight
    (1..10000), as runc maps them."""
    return 1 + ((min(max(shares, 2), 262144) - 2) * 9999) // 262142


def swap_max(memory: int, memory_swap: int) -> int:
    """systemd's MemorySwapMax (swap alone) for docker's MemorySwap (memory and swap
    together; -1 unlimited), or -1 when docker's value sets no limit."""
    if memory_swap < 0 or (memory_swap and not memory):
        return UNLIMITED
    if memory_swap == 0:
        return -1
    return max(memory_swap - memory, 0)


def prop(name: str, signature: str, value: Any) -> tuple[str, Variant]:
    """One property of a transient unit: NAME, its D-Bus SIGNATURE and VALUE."""
    return (name, Variant(signature, value))


# systemd's slice_name_is_valid: dash-separated non-empty parts, or the root "-.slice".
SLICE_RE = re.compile(r"(-|[a-zA-Z0-9:_.\\]+(-[a-zA-Z0-9:_.\\]+)*)\.slice")


def check_cgroup_parent(parent: str) -> None:
    """Raise InvalidArgument unless PARENT (docker's CgroupParent) names a systemd slice."""
    if parent and (len(parent) > 255 or not SLICE_RE.fullmatch(parent)):
        raise InvalidArgument(f"invalid CgroupParent {parent!r}: must be a systemd slice "
                              "such as foo-bar.slice")


def slice_for(name: str, parent: str = "") -> str:
    """The slice container NAME's scope is in: PARENT (its CgroupParent) when given,
    else its own, a child of sdcontainer.slice."""
    return parent or paths.slice_name(escape(name))


def scope_properties(name: str, pid: int, description: str,
                     limits: ScopeLimits, parent: str = "") -> Properties:
    """The properties of container NAME's scope, as StartTransientUnit takes them
    (in slice PARENT, its CgroupParent, when given)."""
    props: Properties = [
        ("Description", Variant("s", description)),
        ("Slice", Variant("s", slice_for(name, parent))),
        ("PIDs", Variant("au", [pid])),
        ("Delegate", Variant("b", True)),
        ("KillSignal", Variant("i", int(limits.kill_signal))),
        ("SendSIGKILL", Variant("b", True)),
        ("TimeoutStopUSec", Variant("t", max(limits.stop_timeout_s, 0) * 1_000_000)),
        ("CollectMode", Variant("s", "inactive-or-failed")),
        # No default dependencies (they would order us after sysinit and basic), but an
        # explicit stop at shutdown, so containers get their own signal and timeout
        # instead of systemd-shutdown's final SIGTERM/SIGKILL sweep; ordering after
        # sdcontainerd makes them stop before it, so it sees and records their exit.
        ("DefaultDependencies", Variant("b", False)),
        ("Conflicts", Variant("as", ["shutdown.target"])),
        ("Before", Variant("as", ["shutdown.target"])),
        ("After", Variant("as", ["sdcontainerd.service"])),
    ]
    if limits.memory_max:
        props.append(("MemoryMax", Variant("t", limits.memory_max)))
    if limits.cpu_quota_per_sec_us:
        props.append(("CPUQuotaPerSecUSec", Variant("t", limits.cpu_quota_per_sec_us)))
    if limits.tasks_max:
        props.append(("TasksMax", Variant("t", limits.tasks_max)))
    if limits.cpu_weight:
        props.append(("CPUWeight", Variant("t", limits.cpu_weight)))
    if limits.memory_swap_max >= 0:
        props.append(("MemorySwapMax", Variant("t", limits.memory_swap_max)))
    if limits.device_policy != "auto":
        # Device access is systemd's to enforce: the policy lives on the unit.
        props.append(("DevicePolicy", Variant("s", limits.device_policy)))
        props.append(("DeviceAllow", Variant("a(ss)", [list(d) for d in limits.device_allow])))
    return props


def _job_done(job: str) -> Callable[[Signal], bool]:
    """Matches JOB's JobRemoved(id, job, unit, result)."""
    return lambda s: s.member == "JobRemoved" and len(s.body) >= 4 and s.body[1] == job


async def _await_job(log_: SignalLog, job: str, what: str, timeout: float) -> None:
    """Wait for JOB's JobRemoved (in LOG_, opened before the call); raise unless 'done'."""
    try:
        async with asyncio.timeout(timeout):
            s = await log_.wait_for(_job_done(job))
    except TimeoutError:
        raise SystemdError(f"{what}: systemd did not finish job {job} within "
                           f"{timeout:g} s") from None
    result = str(s.body[3])
    if result != "done":
        raise SystemdError(f"{what}: the job ended with result '{result}'")


async def _start_transient(bus: SystemBus, unit: str, mode: str, props: Properties,
                           aux: list[tuple[str, Properties]], what: str) -> None:
    """StartTransientUnit, returning once its job is done (DBusError as it came)."""
    with bus.signals() as log_:
        body = await bus.call_raw(SYSTEMD, "/org/freedesktop/systemd1", MANAGER_IFACE,
                                  "StartTransientUnit", "ssa(sv)a(sa(sv))",
                                  [unit, mode, props, aux])
        await _await_job(log_, str(body[0]), what, JOB_TIMEOUT)


async def start_transient(unit: str, mode: str, props: Properties,
                          aux: list[tuple[str, Properties]]) -> None:
    """Create transient UNIT (with auxiliary units AUX); return once its start job is done."""
    bus = await system_bus()
    what = f"cannot create {unit}"
    try:
        await _start_transient(bus, unit, mode, props, aux, what)
    except DBusError as e:
        raise map_error(e, what) from e


async def start_scope(name: str, pid: int, description: str, limits: ScopeLimits,
                      parent: str = "") -> None:
    """Create scope sdcontainer-NAME.scope holding PID, in its own slice (or in slice
    PARENT, which systemd makes if missing); return once its start job is done (PID
    has been moved into it)."""
    bus = await system_bus()
    scope = paths.scope_name(name)
    what = f"cannot create {scope}"
    props = scope_properties(name, pid, description, limits, parent)
    try:
        await _start_transient(bus, scope, "fail", props, [], what)
    except DBusError as e:
        if e.type != UNIT_EXISTS:
            raise map_error(e, what) from e
        # A failed scope of an earlier container by this name (an OOM kill) is still
        # loaded: forget it and try once more (runc #3780).
        await reset_failed(scope)
        try:
            await _start_transient(bus, scope, "fail", props, [], what)
        except DBusError as e2:
            raise map_error(e2, what) from e2


async def stop(unit: str) -> None:
    """Stop UNIT (systemd sends KillSignal, waits TimeoutStopSec, then SIGKILL); returns
    once the stop job is queued, not done."""
    bus = await system_bus()
    await bus.manager("StopUnit", "ss", [unit, "replace"], what=f"cannot stop {unit}")


async def stop_and_wait(unit: str, mode: str, timeout: float) -> None:
    """Stop UNIT and return once its stop job is done."""
    bus = await system_bus()
    what = f"cannot stop {unit}"
    with bus.signals() as log_:
        body = await bus.manager("StopUnit", "ss", [unit, mode], what=what)
        await _await_job(log_, str(body[0]), what, timeout)


async def kill(unit: str, sig: int, whom: str = "all") -> None:
    """Send SIG to the processes of UNIT."""
    bus = await system_bus()
    await bus.manager("KillUnit", "ssi", [unit, whom, int(sig)], what=f"cannot kill {unit}")


async def reset_failed(unit: str) -> None:
    """Forget a failed UNIT so its name can be reused (runc #3780); no error if absent."""
    bus = await system_bus()
    with contextlib.suppress(SdcError):
        await bus.manager("ResetFailedUnit", "s", [unit], what=f"cannot reset {unit}")


async def release(name: str, parent: str = "") -> None:
    """After container NAME's scope has ended: forget a failed scope, stop its now empty
    slice.  A PARENT slice (CgroupParent) is not ours: it is left alone."""
    scope = paths.scope_name(name)
    await wait_gone(scope, 10)
    await reset_failed(scope)
    if parent:
        return
    slice_unit = slice_for(name)
    if await active_state(slice_unit) in ("active", "activating"):
        try:
            await stop_and_wait(slice_unit, "fail", 10)
        except SdcError as e:
            log.debug("cannot stop %s: %s", slice_unit, e)
            await wait_gone(slice_unit, 10)
    await reset_failed(slice_unit)


async def freeze(unit: str) -> None:
    """Freeze (pause) UNIT; Unsupported where the host's cgroups cannot."""
    bus = await system_bus()
    await bus.manager("FreezeUnit", "s", [unit], what=f"cannot pause {unit}")


async def thaw(unit: str) -> None:
    """Thaw (unpause) UNIT."""
    bus = await system_bus()
    await bus.manager("ThawUnit", "s", [unit], what=f"cannot unpause {unit}")


async def _unit_path(bus: SystemBus, unit: str) -> str | None:
    """UNIT's object path if systemd has it loaded (GetUnit never loads one)."""
    try:
        body = await bus.manager("GetUnit", "s", [unit], what=f"cannot look up {unit}")
    except SdcError:
        return None
    return str(body[0])


async def _get(bus: SystemBus, path: str, iface: str, prop: str) -> Any:
    body = await bus.call(SYSTEMD, path, PROPERTIES_IFACE, "Get", "ss", [iface, prop],
                          what=f"cannot read {prop}")
    value = body[0]
    return value.value if isinstance(value, Variant) else value


async def active_state(unit: str) -> str:
    """UNIT's ActiveState ("active", "inactive", "failed", ...); "inactive" if unknown."""
    bus = await system_bus()
    path = await _unit_path(bus, unit)
    if path is None:
        return "inactive"
    try:
        return str(await _get(bus, path, UNIT_IFACE, "ActiveState"))
    except SdcError:
        return "inactive"


def _gone(unit: str, path: str) -> Callable[[Signal], bool]:
    """Matches UNIT's UnitRemoved, or its ActiveState turning inactive or failed."""
    def match(s: Signal) -> bool:
        if s.member == "UnitRemoved":
            return bool(s.body and s.body[0] == unit)
        if s.member == "PropertiesChanged" and s.path == path and len(s.body) >= 2:
            state = s.body[1].get("ActiveState")
            return isinstance(state, Variant) and state.value in ("inactive", "failed")
        return False
    return match


async def wait_gone(unit: str, timeout: float) -> bool:
    """Wait until UNIT is no longer active; True if it went within TIMEOUT seconds."""
    bus = await system_bus()
    with bus.signals() as log_:
        # Listening first, then looking: a change between the look and the wait is logged.
        if await active_state(unit) in ("inactive", "failed"):
            return True
        try:
            async with asyncio.timeout(timeout):
                await log_.wait_for(_gone(unit, object_path(unit)))
        except TimeoutError:
            return False
    return True


async def properties(unit: str, names: list[str]) -> dict[str, Any]:
    """Read NAMES from UNIT's Unit and Scope interfaces (those it has)."""
    bus = await system_bus()
    path = await _unit_path(bus, unit)
    if path is None:
        raise map_error(DBusError("org.freedesktop.systemd1.NoSuchUnit",
                                  f"Unit {unit} not loaded."), f"cannot read {unit}")
    found: dict[str, Any] = {}
    for iface in (UNIT_IFACE, SCOPE_IFACE):
        try:
            body = await bus.call(SYSTEMD, path, PROPERTIES_IFACE, "GetAll", "s", [iface],
                                  what=f"cannot read {unit}")
        except SdcError:
            continue
        for n, v in body[0].items():
            if n in names and n not in found:
                found[n] = v.value if isinstance(v, Variant) else v
    return found


async def system_state() -> str:
    """systemd's SystemState ("running", "stopping", ...)."""
    bus = await system_bus()
    return str(await _get(bus, "/org/freedesktop/systemd1", MANAGER_IFACE, "SystemState"))

