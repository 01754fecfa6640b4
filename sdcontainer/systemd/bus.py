"""The daemon's one connection to the system bus, on its event loop (dbus-fast).

One connection serves the exported org.sdcontainer1 service (dbus/service.py)
and every call the daemon makes to systemd and systemd-machined.  It
subscribes to systemd's signals once, when it connects, so waiting for a job
or for a unit to go is waiting for a signal (JobRemoved, UnitRemoved,
PropertiesChanged), never polling.

Errors come back as D-Bus error names; `map_error` turns a name (or the errno
that sd-bus encodes as System.Error.EXXX) into one of errors.py's classes.
The English text of a message is only ever shown, never interpreted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio.message_bus import MessageBus

from ..errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SdcError,
    SystemdError,
    Unsupported,
)

log = logging.getLogger(__name__)

SYSTEMD = "org.freedesktop.systemd1"
SYSTEMD_PATH = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
UNIT_IFACE = "org.freedesktop.systemd1.Unit"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"

# The signals the daemon waits for; matched once, at connection.
MATCH_RULES = (
    f"type='signal',sender='{SYSTEMD}',interface='{MANAGER_IFACE}',member='JobRemoved'",
    f"type='signal',sender='{SYSTEMD}',interface='{MANAGER_IFACE}',member='UnitRemoved'",
    f"type='signal',sender='{SYSTEMD}',interface='{PROPERTIES_IFACE}',"
    f"member='PropertiesChanged',arg0='{UNIT_IFACE}'",
)

# D-Bus error name -> the class a user sees.  systemd's own names (bus-common-errors.h),
# machined's, and the standard ones sd-bus maps errnos to.
ERRORS: dict[str, type[SdcError]] = {
    "org.freedesktop.systemd1.NoSuchUnit": NotFound,
    "org.freedesktop.systemd1.NoSuchJob": NotFound,
    "org.freedesktop.systemd1.LoadFailed": NotFound,
    "org.freedesktop.machine1.NoSuchMachine": NotFound,
    "org.freedesktop.DBus.Error.UnknownObject": NotFound,
    "org.freedesktop.DBus.Error.FileNotFound": NotFound,
    "org.freedesktop.DBus.Error.ServiceUnknown": NotFound,
    "org.freedesktop.systemd1.UnitExists": Conflict,
    "org.freedesktop.machine1.MachineExists": Conflict,
    "org.freedesktop.systemd1.JobTypeNotApplicable": Conflict,
    "org.freedesktop.systemd1.OnlyByDependency": Conflict,
    "org.freedesktop.systemd1.TransactionIsDestructive": Conflict,
    "org.freedesktop.systemd1.TransactionJobsConflicting": Conflict,
    "org.freedesktop.systemd1.TransactionOrderIsCyclic": Conflict,
    "org.freedesktop.systemd1.UnitMasked": Conflict,
    "org.freedesktop.systemd1.UnitBusy": Conflict,
    "org.freedesktop.systemd1.UnitInactive": Conflict,
    "org.freedesktop.systemd1.Shutdown": Conflict,
    "org.freedesktop.DBus.Error.NotSupported": Unsupported,
    "org.freedesktop.DBus.Error.AccessDenied": PermissionDenied,
    "org.freedesktop.DBus.Error.AuthFailed": PermissionDenied,
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired": PermissionDenied,
    "org.freedesktop.DBus.Error.InvalidArgs": InvalidArgument,
    "org.freedesktop.DBus.Error.InvalidSignature": InvalidArgument,
    "org.freedesktop.DBus.Error.UnknownProperty": InvalidArgument,
    "org.freedesktop.DBus.Error.PropertyReadOnly": InvalidArgument,
}
# sd-bus sends a bare errno as "System.Error.E<NAME>".
ERRNOS: dict[str, type[SdcError]] = {
    "ENOENT": NotFound, "ESRCH": NotFound, "ENXIO": NotFound,
    "EEXIST": Conflict, "EBUSY": Conflict, "EALREADY": Conflict,
    "EOPNOTSUPP": Unsupported, "ENOTSUP": Unsupported, "ENOSYS": Unsupported,
    "EPERM": PermissionDenied, "EACCES": PermissionDenied,
    "EINVAL": InvalidArgument,
}


def error_class(name: str) -> type[SdcError]:
    """The errors.py class for D-Bus error NAME (SystemdError when we know no better)."""
    found = ERRORS.get(name)
    if found is not None:
        return found
    if name.startswith("System.Error."):
        return ERRNOS.get(name.removeprefix("System.Error."), SystemdError)
    return SystemdError


def map_error(e: DBusError, what: str) -> SdcError:
    """E as one of errors.py's classes, its text prefixed with WHAT."""
    return error_class(str(e.type))(f"{what}: {e.text}")


@dataclass(frozen=True)
class Signal:
    """A systemd signal as the listeners see it."""

    member: str
    path: str
    body: list[Any]


class SignalLog:
    """Every signal of systemd's that arrives while it is open, in order, and a way to
    wait for the next.  Opened before the call whose outcome it waits for, so a signal
    read in the same batch as the call's reply is not missed."""

    def __init__(self) -> None:
        self.seen: list[Signal] = []
        self._arrived = asyncio.Event()

    def feed(self, s: Signal) -> None:
        """Record S and wake the waiter."""
        self.seen.append(s)
        self._arrived.set()

    async def wait_for(self, match: Callable[[Signal], bool]) -> Signal:
        """The first signal (logged or to come) that MATCH accepts."""
        i = 0
        while True:
            while i < len(self.seen):
                s = self.seen[i]
                i += 1
                if match(s):
                    return s
            self._arrived.clear()
            await self._arrived.wait()


class SystemBus:
    """A connection to the system bus, subscribed to systemd's signals."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.loop = asyncio.get_running_loop()
        self._logs: list[SignalLog] = []
        bus.add_message_handler(self._on_message)

    @classmethod
    async def open(cls) -> SystemBus:
        """Connect, match systemd's signals and Subscribe (so systemd sends them)."""
        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except Exception as e:
            raise SystemdError(f"cannot connect to the system bus: {e}") from e
        self = cls(bus)
        try:
            for rule in MATCH_RULES:
                await self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "AddMatch", "s", [rule],
                                what="cannot watch systemd's signals")
            await self.call(SYSTEMD, SYSTEMD_PATH, MANAGER_IFACE, "Subscribe",
                            what="cannot subscribe to systemd's signals")
        except BaseException:
            bus.disconnect()
            raise
        return self

    @property
    def connected(self) -> bool:
        """Whether the connection still stands."""
        return bool(self.bus.connected)

    def close(self) -> None:
        """Disconnect (pending calls fail)."""
        self.bus.disconnect()

    def _on_message(self, msg: Message) -> bool:
        # Only look: other handlers (the exported service) see every message too.
        if (msg.message_type == MessageType.SIGNAL and (self._logs or _listeners)
                and msg.member is not None):
            s = Signal(msg.member, msg.path or "", list(msg.body))
            for log_ in list(self._logs):
                log_.feed(s)
            for listener in list(_listeners):
                try:
                    listener(s)
                except Exception:  # one listener's bug must not cut the others off
                    log.exception("a listener of systemd's signals failed")
        return False

    @contextlib.contextmanager
    def signals(self) -> Iterator[SignalLog]:
        """Log systemd's signals for the duration of the block."""
        log_ = SignalLog()
        self._logs.append(log_)
        try:
            yield log_
        finally:
            self._logs.remove(log_)

    async def call_raw(self, destination: str, path: str, interface: str, member: str,
                       signature: str = "", body: Sequence[Any] = ()) -> list[Any]:
        """Call a method; its reply's body, or dbus_fast.DBusError with the error's name."""
        try:
            reply = await self.bus.call(Message(
                destination=destination, path=path, interface=interface, member=member,
                signature=signature, body=list(body)))
        except DBusError:
            raise
        except Exception as e:  # the connection is gone
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", str(e)) from e
        if reply is None:
            return []
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            name = str(reply.error_name or "org.freedesktop.DBus.Error.Failed")
            raise DBusError(name, text or name)
        return list(reply.body)

    async def call(self, destination: str, path: str, interface: str, member: str,
                   signature: str = "", body: Sequence[Any] = (), *, what: str) -> list[Any]:
        """As call_raw, errors mapped to errors.py (prefixed with WHAT)."""
        try:
            return await self.call_raw(destination, path, interface, member, signature, body)
        except DBusError as e:
            raise map_error(e, what) from e

    async def manager(self, member: str, signature: str = "", body: Sequence[Any] = (),
                      *, what: str) -> list[Any]:
        """Call systemd's Manager."""
        return await self.call(SYSTEMD, SYSTEMD_PATH, MANAGER_IFACE, member, signature, body,
                               what=what)


_current: SystemBus | None = None
# Called with every signal of systemd's on whichever connection is current (listen()).
_listeners: list[Callable[[Signal], None]] = []
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary())


async def system_bus() -> SystemBus:
    """The connection of the running event loop, opened on first use (or after it broke)."""
    global _current
    loop = asyncio.get_running_loop()
    bus = _current
    if bus is not None and bus.loop is loop and bus.connected:
        return bus
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        bus = _current
        if bus is None or bus.loop is not loop or not bus.connected:
            if bus is not None and bus.loop is loop:
                log.warning("the system bus connection was lost: reconnecting")
            bus = _current = await SystemBus.open()
    return bus


def listen(listener: Callable[[Signal], None]) -> Callable[[], None]:
    """Call LISTENER (on the event loop; it must not block) with every signal of
    systemd's that the daemon's connection receives, across reconnections; returns
    the function that stops it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def close() -> None:
    """Disconnect the shared connection (at daemon exit)."""
    global _current
    if _current is not None:
        with contextlib.suppress(Exception):
            _current.close()
        _current = None
    _locks.clear()
