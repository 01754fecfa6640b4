# dbus-fast takes D-Bus signatures as annotations ("s", "a(ssss)"); type checkers
# read them as names, and its decorators are untyped.
# mypy: disable-error-code="name-defined,valid-type,untyped-decorator,no-untyped-call"
# ruff: noqa: F821, F722
"""org.sdcontainer1: a Manager object and one object per container.

The objects follow the engine's event bus, so a container started over REST,
the CLI or D-Bus, or stopped with `systemctl stop`, shows up the same way:
ContainerAdded/ContainerRemoved/ContainerStateChanged on the Manager and
PropertiesChanged on the container's object.

Every call is authorised (polkit.py), reads as well as writes: Inspect returns
a container's environment, and the object paths, properties and signals name
the containers.  Only org.freedesktop.DBus.Peer, which says nothing about
containers, is open to every local user.  The bus policy
(units/org.sdcontainer1.conf) is the first gate; this is the second, so a
loosened policy does not open the data.

The connection is the daemon's one system-bus connection (systemd/bus.py),
shared with the calls to systemd; the daemon opens and closes it.

Calls are dispatched by a message handler rather than dbus-fast's method
decorators because authorising them needs the caller's bus name, which the
decorated methods do not see.  Manager calls are answered here; the standard
interfaces (Properties, Introspectable, ObjectManager) are handed back to
dbus-fast once the caller is authorised.  The decorated methods remain, as
the interface's declaration: introspection shows them with their signatures.
"""

# No `from __future__ import annotations` here: dbus-fast reads the D-Bus signatures
# from the annotations ("s", "a(ssss)"), which must stay plain strings.
import asyncio
import contextlib
import json
import logging
from typing import Any

from dbus_fast import Message, MessageFlag, MessageType, NameFlag, RequestNameReply
from dbus_fast.aio.message_bus import MessageBus
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property, method, signal

from ..engine.core import Engine
from ..engine.records import Container
from ..errors import InvalidArgument, NoSuchContainer, SdcError
from ..images.pull import pull
from ..model.spec import ContainerConfig
from . import polkit

log = logging.getLogger(__name__)

BUS_NAME = "org.sdcontainer1"
MANAGER_PATH = "/org/sdcontainer1"
MANAGER_IFACE = "org.sdcontainer1.Manager"
CONTAINER_IFACE = "org.sdcontainer1.Container"
CONTAINER_ROOT = "/org/sdcontainer1/container"
# Interfaces every local user may call: they reveal nothing about containers.
OPEN_INTERFACES = frozenset({"org.freedesktop.DBus.Peer"})

# Method -> (input signature, output signature, mutating).
METHODS: dict[str, tuple[str, str, bool]] = {
    "Run": ("ssas", "s", True), "Create": ("ssas", "s", True), "Start": ("s", "", True),
    "Stop": ("si", "", True), "Kill": ("ss", "", True), "Remove": ("sb", "", True),
    "Pull": ("s", "s", True), "List": ("b", "a(ssss)", False), "Inspect": ("s", "s", False),
    "Rename": ("ss", "", True), "Pause": ("s", "", True), "Unpause": ("s", "", True),
}
# Container object method -> (input, output, mutating); the object names the container.
CONTAINER_METHODS: dict[str, tuple[str, str, bool]] = {"Exec": ("as", "iss", True)}


def dbus_text(data: bytes) -> str:
    """Output as a D-Bus string: valid UTF-8 without NUL (replaced, as undecodable bytes)."""
    return data.decode(errors="replace").replace("\0", "\ufffd")


def object_path(name: str) -> str:
    """The object path of container NAME: bytes outside [A-Za-z0-9] become _XX, as sd-bus
    escapes labels (`my-app` is .../container/my_2dapp)."""
    label = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):02x}" for ch in name)
    return f"{CONTAINER_ROOT}/{label or '_'}"


def ip_address(c: Container) -> str:
    """The first address of a running container ('' otherwise)."""
    interfaces = c.network.get("interfaces", []) if c.running else []
    return str(interfaces[0].get("ip", "")) if interfaces else ""


class ContainerObject(ServiceInterface):
    """org.sdcontainer1.Container: one container's state as properties."""

    def __init__(self, c: Container) -> None:
        super().__init__(CONTAINER_IFACE)
        self.c = c
        self.last = self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """Every property's current value."""
        c, st = self.c, self.c.state
        return {"Id": c.id, "Name": c.name, "Image": c.config.image, "State": st.status,
                "Unit": c.scope, "MainPID": max(st.pid, 0), "ExitCode": st.exit_code,
                "StartedAt": st.started_at, "FinishedAt": st.finished_at,
                "IPAddress": ip_address(c)}

    def refresh(self) -> None:
        """Emit PropertiesChanged for what changed since the last look."""
        now = self.snapshot()
        changed = {k: v for k, v in now.items() if self.last.get(k) != v}
        self.last = now
        if changed:
            self.emit_properties_changed(changed)

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> "s":
        return str(self.c.id)

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return str(self.c.name)

    @dbus_property(access=PropertyAccess.READ)
    def Image(self) -> "s":
        return str(self.c.config.image)

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> "s":
        return str(self.c.state.status)

    @dbus_property(access=PropertyAccess.READ)
    def Unit(self) -> "s":
        return str(self.c.scope)

    @dbus_property(access=PropertyAccess.READ)
    def MainPID(self) -> "u":
        return max(int(self.c.state.pid), 0)

    @dbus_property(access=PropertyAccess.READ)
    def ExitCode(self) -> "i":
        return int(self.c.state.exit_code)

    @dbus_property(access=PropertyAccess.READ)
    def StartedAt(self) -> "s":
        return str(self.c.state.started_at)

    @dbus_property(access=PropertyAccess.READ)
    def FinishedAt(self) -> "s":
        return str(self.c.state.finished_at)

    @dbus_property(access=PropertyAccess.READ)
    def IPAddress(self) -> "s":
        return ip_address(self.c)

    @method()
    def Exec(self, argv: "as") -> "iss":
        """Run ARGV in the container to its end: (exit code, stdout, stderr), as CRI's
        ExecSync (answered by DBusAPI.dispatch, as MANAGE)."""
        raise NotImplementedError


class ManagerInterface(ServiceInterface):
    """org.sdcontainer1.Manager: the declaration (calls go through DBusAPI.dispatch)."""

    def __init__(self) -> None:
        super().__init__(MANAGER_IFACE)

    @method()
    def Run(self, image: "s", name: "s", cmd: "as") -> "s":
        raise NotImplementedError

    @method()
    def Create(self, image: "s", name: "s", cmd: "as") -> "s":
        raise NotImplementedError

    @method()
    def Start(self, container: "s") -> None:
        raise NotImplementedError

    @method()
    def Stop(self, container: "s", timeout: "i") -> None:
        raise NotImplementedError

    @method()
    def Kill(self, container: "s", signal: "s") -> None:
        raise NotImplementedError

    @method()
    def Remove(self, container: "s", force: "b") -> None:
        raise NotImplementedError

    @method()
    def Pull(self, reference: "s") -> "s":
        raise NotImplementedError

    @method()
    def List(self, all: "b") -> "a(ssss)":
        raise NotImplementedError

    @method()
    def Inspect(self, container: "s") -> "s":
        raise NotImplementedError

    @method()
    def Rename(self, container: "s", name: "s") -> None:
        raise NotImplementedError

    @method()
    def Pause(self, container: "s") -> None:
        raise NotImplementedError

    @method()
    def Unpause(self, container: "s") -> None:
        raise NotImplementedError

    @signal()
    def ContainerAdded(self, id_: str, name: str) -> "ss":
        return [id_, name]

    @signal()
    def ContainerRemoved(self, id_: str, name: str) -> "ss":
        return [id_, name]

    @signal()
    def ContainerStateChanged(self, id_: str, name: str, state: str) -> "sss":
        return [id_, name, state]


class DBusAPI:
    """The bus connection, the exported objects, and the calls."""

    def __init__(self, engine: Engine, bus: MessageBus) -> None:
        self.engine = engine
        self.bus = bus
        self.manager = ManagerInterface()
        self.objects: dict[str, tuple[str, ContainerObject]] = {}  # id -> (path, object)
        self._tasks: set[asyncio.Future[None]] = set()
        self._events: asyncio.Queue[dict[str, Any]] | None = None
        self._cleared: Message | None = None  # the authorised call being handed back

    @classmethod
    async def start(cls, engine: Engine, bus: MessageBus) -> "DBusAPI | None":
        """Export our objects on BUS (the daemon's connection) and take org.sdcontainer1;
        None (logged) if we cannot."""
        api = cls(engine, bus)
        bus.add_message_handler(api.dispatch)
        bus.export(MANAGER_PATH, api.manager)
        for c in engine.containers.values():
            api._export(c)
        api._events = engine.events.subscribe()
        api._spawn(api._follow())
        reply = await bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            log.warning("no D-Bus API: %s is owned by another process", BUS_NAME)
            await api.close()
            return None
        return api

    async def close(self) -> None:
        """Give up our name and objects; the connection itself stays the daemon's."""
        if self._events is not None:
            self.engine.events.unsubscribe(self._events)
        for t in list(self._tasks):
            t.cancel()
        self.bus.remove_message_handler(self.dispatch)
        for cid in list(self.objects):
            self._unexport(cid)
        self.bus.unexport(MANAGER_PATH, self.manager)
        if self.bus.connected:
            with contextlib.suppress(Exception):
                await self.bus.release_name(BUS_NAME)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- objects ----------------------------------------------------------------

    def _export(self, c: Container) -> None:
        path = object_path(c.name)
        obj = ContainerObject(c)
        self.bus.export(path, obj)
        self.objects[c.id] = (path, obj)

    def _unexport(self, cid: str) -> None:
        entry = self.objects.pop(cid, None)
        if entry is not None:
            self.bus.unexport(entry[0], entry[1])

    async def _follow(self) -> None:
        """Mirror the engine's events onto the bus."""
        assert self._events is not None
        while True:
            event = await self._events.get()
            if event.get("Type") != "container":
                continue
            with contextlib.suppress(Exception):
                self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        cid, action = event["id"], event["Action"]
        name = event["Actor"]["Attributes"].get("name", "")
        if action == "destroy":
            # The container may have died and been removed before its "die" event
            # reached us: report the last state it had before it goes.
            self._report_state(cid)
            self._unexport(cid)
            self.manager.ContainerRemoved(cid, name)
            return
        c = self.engine.containers.get(cid)
        if action == "create":
            if c is not None:
                self._export(c)
                self.manager.ContainerAdded(cid, c.name)
            return
        if action == "rename":
            if c is not None:
                self._unexport(cid)
                self._export(c)
            return
        self._report_state(cid)

    def _report_state(self, cid: str) -> None:
        """PropertiesChanged, and ContainerStateChanged when the state moved, for
        the container behind CID's object (which outlives its engine entry)."""
        entry = self.objects.get(cid)
        if entry is None:
            return
        obj = entry[1]
        before = obj.last["State"]
        obj.refresh()
        if obj.last["State"] != before:
            self.manager.ContainerStateChanged(cid, obj.c.name, obj.c.state.status)

    # -- calls ------------------------------------------------------------------

    def dispatch(self, msg: Message) -> bool:
        """Claim every call but Peer's: Manager calls are answered from a task, the
        rest are handed back to dbus-fast once the caller is authorised."""
        if msg.message_type != MessageType.METHOD_CALL or msg is self._cleared:
            return False
        if msg.interface == MANAGER_IFACE and msg.path == MANAGER_PATH \
                and msg.member in METHODS:
            self._spawn(self._answer(msg))
            return True
        if msg.interface == CONTAINER_IFACE and msg.member in CONTAINER_METHODS:
            self._spawn(self._answer(msg))
            return True
        if msg.interface in OPEN_INTERFACES:
            return False
        # Properties, Introspect (whose child nodes are container names),
        # GetManagedObjects, calls without an interface: all reads.
        self._spawn(self._pass_on(msg))
        return True

    async def _authorize(self, msg: Message, action: str) -> None:
        interactive = bool(msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        await polkit.authorize(self.bus, msg.sender or "", interactive, action)

    async def _pass_on(self, msg: Message) -> None:
        """Authorise MSG as a read, then let dbus-fast answer it as it would have."""
        try:
            await self._authorize(msg, polkit.INSPECT)
        except SdcError as e:
            self.bus.send(Message.new_error(msg, e.dbus_name, str(e)))
            return
        except Exception as e:
            log.exception("internal error authorising %s.%s", msg.interface, msg.member)
            self.bus.send(Message.new_error(msg, SdcError.dbus_name, f"internal error: {e}"))
            return
        # dbus-fast (1.84) has no public way to resume a claimed message: run it through
        # its dispatcher again (_process_message, a cpdef method callable from Python),
        # with our handler stepping aside for this one.
        self._cleared = msg
        try:
            self.bus._process_message(msg)
        finally:
            self._cleared = None

    async def _answer(self, msg: Message) -> None:
        member = str(msg.member)  # dispatch() sent only our methods here
        on_container = msg.interface == CONTAINER_IFACE
        in_sig, out_sig, mutating = (CONTAINER_METHODS if on_container else METHODS)[member]
        try:
            if msg.signature != in_sig:
                self.bus.send(Message.new_error(
                    msg, "org.freedesktop.DBus.Error.InvalidArgs",
                    f"{msg.member} takes ({in_sig}), not ({msg.signature})"))
                return
            # Reads too: Inspect returns the environment, List every name.
            await self._authorize(msg, polkit.MANAGE if mutating else polkit.INSPECT)
            args = [self._container_at(str(msg.path)), *msg.body] if on_container \
                else list(msg.body)
            result = await self._call(member, args)
            body = [] if not out_sig else list(result) if isinstance(result, tuple) else [result]
            self.bus.send(Message.new_method_return(msg, out_sig, body))
        except SdcError as e:
            self.bus.send(Message.new_error(msg, e.dbus_name, str(e)))
        except Exception as e:
            log.exception("internal error answering %s", msg.member)
            self.bus.send(Message.new_error(msg, SdcError.dbus_name, f"internal error: {e}"))

    async def _call(self, member: str, args: list[Any]) -> Any:
        e = self.engine
        if member in ("Run", "Create"):
            image, name, cmd = args
            if not image:
                raise InvalidArgument("no image specified")
            c = await e.create(ContainerConfig(image=image, cmd=cmd or None), name or None)
            if member == "Run":
                await e.start(c.id)
            return c.id
        if member == "Start":
            await e.start(args[0])
        elif member == "Stop":
            await e.stop(args[0], None if args[1] < 0 else args[1])
        elif member == "Kill":
            await e.kill(args[0], args[1] or "SIGKILL")
        elif member == "Remove":
            await e.remove(args[0], force=args[1])
        elif member == "Pull":
            img = await asyncio.to_thread(pull, e.images, args[0])
            return img.id
        elif member == "List":
            found = [c for c in e.containers.values() if args[0] or c.running]
            return [[c.id, c.name, c.config.image, c.state.status]
                    for c in sorted(found, key=lambda c: c.created)]
        elif member == "Inspect":
            from ..engine.views import inspect

            c = e.get(args[0])
            return json.dumps(inspect(c, e.restarting(c)))
        elif member == "Rename":
            await e.rename(args[0], args[1])
        elif member in ("Pause", "Unpause"):
            await e.pause(args[0], paused=member == "Pause")
        elif member == "Exec":
            r = await e.execs.run(args[0], list(args[1]))
            return r.exit_code, dbus_text(r.stdout), dbus_text(r.stderr)
        return None

    def _container_at(self, path: str) -> str:
        """The id of the container whose object is at PATH."""
        for cid, (p, _) in self.objects.items():
            if p == path:
                return cid
        raise NoSuchContainer(f"No such container object: {path}")
