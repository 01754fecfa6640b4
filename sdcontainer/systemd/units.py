"""Everything sdcontainer asks of systemd's manager, over D-Bus with pystemd.

Each container is a transient scope in its own slice.  The scope is created
with `PIDs=[monitor]` before the workload exists, so every process of the
container is accounted to it from its first instruction.

sd-bus connections are not thread-safe: each thread gets its own.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from pystemd.dbusexc import DBusBaseError as DBusError
from pystemd.dbuslib import DBus
from pystemd.systemd1 import Manager, Unit, unit_signatures

from .. import paths
from ..errors import Conflict, InvalidArgument, NotFound, SystemdError, Unsupported

log = logging.getLogger(__name__)

# pystemd's property table lacks PIDs; this is the one place we extend it.
unit_signatures.KNOWN_UNIT_SIGNATURES.setdefault(b"PIDs", b"au")
unit_signatures.KNOWN_UNIT_SIGNATURES.setdefault(b"DeviceAllow", b"a(ss)")

_local = threading.local()


def thread_bus() -> DBus:
    """This thread's connection to the system bus (sd-bus connections are per thread)."""
    bus: DBus | None = getattr(_local, "bus", None)
    if bus is None:
        bus = DBus()
        bus.open()
        _local.bus = bus
    return bus


def _manager() -> Manager:
    manager: Manager | None = getattr(_local, "manager", None)
    if manager is None:
        manager = Manager(bus=thread_bus(), _autoload=True)
        _local.manager = manager
    return manager


def _unit(name: str) -> Unit:
    _manager()
    return Unit(name.encode(), bus=thread_bus(), _autoload=True)


def _error(e: DBusError, what: str) -> Exception:
    text = str(e)
    name = type(e).__name__
    lowered = text.lower()
    if "freez" in lowered and "support" in lowered:
        return Unsupported(f"{what}: {text}")
    if "not loaded" in lowered or "not found" in lowered or "NoSuchUnit" in name:
        return NotFound(f"{what}: {text}")
    if "already exists" in lowered:
        return Conflict(f"{what}: {text}")
    if "invalid" in lowered:
        return InvalidArgument(f"{what}: {text}")
    return SystemdError(f"{what}: {text}")


def _call(what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except DBusError as e:
        raise _error(e, what) from e


def escape(name: str) -> str:
    """Escape NAME for a unit name component, as systemd-escape does.

    A slice's dashes mean nesting ("a-b.slice" lives in "a.slice"): a container
    called "my-app" must get "sdcontainer-my\\x2dapp.slice", not a child of "my".
    """
    return "".join(f"\\x{ord(c):02x}" if c == "-" else c for c in name)


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


def slice_for(name: str) -> str:
    """The slice unit of container NAME (a child of sdcontainer.slice)."""
    return paths.slice_name(escape(name))


def start_scope(name: str, pid: int, description: str, limits: ScopeLimits) -> None:
    """Create scope sdcontainer-NAME.scope holding PID, in its own slice."""
    scope = paths.scope_name(name)
    props: dict[bytes, Any] = {
        b"Description": description.encode(),
        b"Slice": slice_for(name).encode(),
        b"PIDs": [pid],
        b"Delegate": True,
        b"KillSignal": int(limits.kill_signal),
        b"SendSIGKILL": True,
        b"TimeoutStopUSec": max(limits.stop_timeout_s, 0) * 1_000_000,
        b"CollectMode": b"inactive-or-failed",
        # No default dependencies (they would order us after sysinit and basic), but an
        # explicit stop at shutdown, so containers get their own signal and timeout
        # instead of systemd-shutdown's final SIGTERM/SIGKILL sweep; ordering after
        # sdcontainerd makes them stop before it, so it sees and records their exit.
        b"DefaultDependencies": False,
        b"Conflicts": [b"shutdown.target"],
        b"Before": [b"shutdown.target"],
        b"After": [b"sdcontainerd.service"],
    }
    if limits.memory_max:
        props[b"MemoryMax"] = limits.memory_max
    if limits.cpu_quota_per_sec_us:
        props[b"CPUQuotaPerSecUSec"] = limits.cpu_quota_per_sec_us
    if limits.tasks_max:
        props[b"TasksMax"] = limits.tasks_max
    if limits.device_policy != "auto":
        # Device access is systemd's to enforce: the policy lives on the unit.
        props[b"DevicePolicy"] = limits.device_policy.encode()
        props[b"DeviceAllow"] = [(p.encode(), perms.encode()) for p, perms in limits.device_allow]
    try:
        _manager().Manager.StartTransientUnit(scope.encode(), b"fail", props)
    except DBusError as e:
        if "exists" not in str(e).lower():
            raise _error(e, f"cannot create {scope}") from e
        # A failed scope of an earlier container by this name (an OOM kill) is still
        # loaded: forget it and try once more (runc #3780).
        reset_failed(scope)
        _call(f"cannot create {scope}", _manager().Manager.StartTransientUnit,
              scope.encode(), b"fail", props)


def stop(unit: str) -> None:
    """Stop UNIT (systemd sends KillSignal, waits TimeoutStopSec, then SIGKILL)."""
    _call(f"cannot stop {unit}", _manager().Manager.StopUnit, unit.encode(), b"replace")


def kill(unit: str, sig: int, whom: str = "all") -> None:
    """Send SIG to the processes of UNIT."""
    _call(f"cannot kill {unit}", _manager().Manager.KillUnit, unit.encode(), whom.encode(), sig)


def reset_failed(unit: str) -> None:
    """Forget a failed UNIT so its name can be reused (runc #3780); no error if absent."""
    with contextlib.suppress(DBusError):
        _manager().Manager.ResetFailedUnit(unit.encode())


def release(name: str) -> None:
    """After container NAME's scope has ended: forget a failed scope, stop its now empty slice."""
    scope = paths.scope_name(name)
    wait_gone(scope, 10)
    reset_failed(scope)
    slice_unit = slice_for(name)
    if active_state(slice_unit) in ("active", "activating"):
        try:
            _manager().Manager.StopUnit(slice_unit.encode(), b"fail")
        except DBusError as e:
            log.debug("cannot stop %s: %s", slice_unit, e)
        wait_gone(slice_unit, 10)
    reset_failed(slice_unit)


def freeze(unit: str) -> None:
    """Freeze (pause) UNIT; Unsupported where the host's cgroups cannot."""
    _call(f"cannot pause {unit}", _manager().Manager.FreezeUnit, unit.encode())


def thaw(unit: str) -> None:
    """Thaw (unpause) UNIT."""
    _call(f"cannot unpause {unit}", _manager().Manager.ThawUnit, unit.encode())


def active_state(unit: str) -> str:
    """UNIT's ActiveState ("active", "inactive", "failed", ...); "inactive" if unknown."""
    try:
        path = _manager().Manager.GetUnit(unit.encode())
    except DBusError:
        return "inactive"
    try:
        state: bytes = thread_bus().get_property(
            b"org.freedesktop.systemd1", path, b"org.freedesktop.systemd1.Unit",
            b"ActiveState", b"s")
    except DBusError:
        return "inactive"
    return state.decode()


def wait_gone(unit: str, timeout: float) -> bool:
    """Wait until UNIT is no longer active; True if it went within TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.001  # a scope whose last process left goes inactive within milliseconds
    while time.monotonic() < deadline:
        if active_state(unit) in ("inactive", "failed"):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return False


def properties(unit: str, names: list[str]) -> dict[str, Any]:
    """Read NAMES from UNIT's Unit and Scope interfaces."""
    u = _unit(unit)
    result: dict[str, Any] = {}
    for n in names:
        for iface in (u.Unit, u.Scope):
            try:
                result[n] = getattr(iface, n)
                break
            except (AttributeError, DBusError):
                continue
    return result
