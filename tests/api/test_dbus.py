"""org.sdcontainer1 on the system bus, driven by busctl and a dbus-fast client."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import SOCKET, sdc, sh, systemctl, unit_property, wait_for

DEST, MANAGER, IFACE = "org.sdcontainer1", "/org/sdcontainer1", "org.sdcontainer1.Manager"
RULES = "/usr/share/polkit-1/rules.d/50-sdcontainer.rules"


def busctl(*args: str, user: str | None = None, check: bool = False) -> Any:
    argv = ["busctl", *args]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return sh(*argv, check=check)


def call(*args: str, user: str | None = None) -> Any:
    return busctl("call", "--", DEST, MANAGER, IFACE, *args, user=user)


def path(name: str) -> str:
    """sd-bus's label escaping: t-1 is .../container/t_2d1."""
    label = "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in name)
    return f"/org/sdcontainer1/container/{label}"


def prop(name: str, p: str) -> str:
    r = busctl("get-property", DEST, path(name),
               "org.sdcontainer1.Container", p)
    return str(r.stdout.strip())


@pytest.fixture(scope="module")
def users(daemon: None) -> Iterator[None]:
    """An unprivileged user, and one in group sdcontainer (both only in this box)."""
    sh("groupadd", "-f", "-r", "sdcontainer")
    for user, extra in (("sdc-nobody", []), ("sdc-member", ["-G", "sdcontainer"])):
        if sh("id", user, check=False).returncode != 0:
            sh("useradd", "-M", "-N", *extra, user)
    # The bus resolves <policy group="..."> when it loads its configuration: a group
    # made after that counts only once the bus reloads (packages create it first).
    busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
           "ReloadConfig", check=True)
    yield


def test_files_installed(daemon: None) -> None:
    for path in ("/usr/share/dbus-1/system.d/org.sdcontainer1.conf",
                 "/usr/share/dbus-1/system-services/org.sdcontainer1.service",
                 "/usr/share/polkit-1/actions/org.sdcontainer1.policy", RULES):
        assert os.path.exists(path), path


def test_tree_and_introspection(daemon: None) -> None:
    r = busctl("tree", DEST)
    assert "/org/sdcontainer1" in r.stdout, r.stderr
    r = busctl("introspect", DEST, MANAGER, IFACE)
    for member in (".Run", ".Create", ".Start", ".Stop", ".Kill", ".Remove", ".List", ".Pull",
                   ".ContainerAdded", ".ContainerRemoved", ".ContainerStateChanged"):
        assert member in r.stdout, member


def test_busctl_lifecycle(busybox: str, name: str) -> None:
    r = call("Run", "ssas", busybox, name, "3", "sh", "-c", "sleep 100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.split()[1].strip('"')
    assert path(name) in busctl("tree", DEST).stdout
    assert prop(name, "State") == 's "running"'
    assert prop(name, "Id") == f's "{cid}"'
    assert prop(name, "Unit") == f's "sdcontainer-{name}.scope"'
    pid = int(prop(name, "MainPID").split()[1])
    assert pid > 0 and unit_property(f"sdcontainer-{name}.scope", "ActiveState") == "active"
    assert f'"{name}" "{busybox}" "running"' in call("List", "b", "false").stdout
    assert call("Stop", "si", name, "1").returncode == 0
    assert prop(name, "State") == 's "exited"'
    assert prop(name, "ExitCode") == "i 137"
    assert call("Remove", "sb", name, "false").returncode == 0
    assert path(name) not in busctl("tree", DEST).stdout


def test_errors_are_named_bus_errors(daemon: None) -> None:
    from dbus_fast.aio.message_bus import MessageBus
    from dbus_fast.constants import BusType
    from dbus_fast.message import Message

    async def go() -> list[tuple[str, str]]:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        out = []
        for member, sig, body in (("Start", "s", ["no-such"]), ("Kill", "ss", ["no-such", "X"]),
                                  ("Run", "ssas", ["", "", []]), ("Stop", "s", ["x"])):
            reply = await bus.call(Message(destination=DEST, path=MANAGER, interface=IFACE,
                                           member=member, signature=sig, body=body))
            assert reply is not None
            out.append((reply.error_name or "", reply.body[0] if reply.body else ""))
        bus.disconnect()
        return out

    errors = asyncio.run(go())
    assert errors[0] == ("org.sdcontainer1.Error.NotFound", "No such container: no-such")
    assert errors[1][0] == "org.sdcontainer1.Error.NotFound"
    assert errors[2] == ("org.sdcontainer1.Error.InvalidArgument", "no image specified")
    assert errors[3][0] == "org.freedesktop.DBus.Error.InvalidArgs"


def test_signals_seen_by_a_dbus_fast_client(busybox: str, name: str) -> None:
    from dbus_fast.aio.message_bus import MessageBus
    from dbus_fast.constants import BusType, MessageType
    from dbus_fast.message import Message

    async def go() -> list[tuple[str, list[Any]]]:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        seen: list[tuple[str, list[Any]]] = []
        done = asyncio.Event()

        def on(msg: Message) -> None:
            if msg.message_type != MessageType.SIGNAL:
                return
            body = [b.value if hasattr(b, "value") else b for b in msg.body]
            if msg.member == "PropertiesChanged":
                body = [msg.path, {k: v.value for k, v in msg.body[1].items()}]
            seen.append((msg.member, body))
            if msg.member == "ContainerRemoved":
                done.set()

        bus.add_message_handler(on)
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch",
                               signature="s", body=[f"type='signal',sender='{DEST}'"]))
        reply = await bus.call(Message(destination=DEST, path=MANAGER, interface=IFACE,
                                       member="Run", signature="ssas",
                                       body=[busybox, name, ["sleep", "100"]]))
        assert reply is not None and not reply.error_name, reply and reply.body
        # A stop from systemd itself, not from us: the object still follows.
        await asyncio.to_thread(systemctl, "stop", f"sdcontainer-{name}.scope")
        await asyncio.to_thread(wait_for, lambda: prop(name, "State") == 's "exited"')
        reply = await bus.call(Message(destination=DEST, path=MANAGER, interface=IFACE,
                                       member="Remove", signature="sb", body=[name, False]))
        assert reply is not None and not reply.error_name, reply and reply.body
        await asyncio.wait_for(done.wait(), 10)
        bus.disconnect()
        return seen

    seen = asyncio.run(go())
    members = [m for m, _ in seen]
    assert "ContainerAdded" in members and members[-1] == "ContainerRemoved"
    states = [b[2] for m, b in seen if m == "ContainerStateChanged"]
    assert states == ["running", "exited"]
    changed = [b[1] for m, b in seen if m == "PropertiesChanged"]
    assert any(c.get("State") == "running" and c.get("MainPID", 0) > 0 for c in changed)
    assert any(c.get("State") == "exited" for c in changed)


SECRET = "DB_PASSWORD=hunter2-from-the-issue"


def as_user(user: str, *args: str) -> Any:
    """busctl ARGS as USER; stdout and stderr together (neither may leak)."""
    r = busctl(*args, user=user)
    return r.returncode, r.stdout + r.stderr


def leaks(name: str, out: str, args: tuple[str, ...]) -> bool:
    """True if OUT tells anything of container NAME (its secret, name or object path)
    beyond what the caller gave in ARGS (busctl echoes the path it was asked about)."""
    for a in args:
        out = out.replace(a, "")
    return any(s in out for s in ("hunter2", name, path(name).rsplit("/", 1)[1]))


def reads(name: str) -> list[tuple[str, ...]]:
    """Every way to read about container NAME over the bus."""
    return [
        ("call", "--", DEST, MANAGER, IFACE, "Inspect", "s", name),
        ("call", "--", DEST, MANAGER, IFACE, "List", "b", "true"),
        ("get-property", DEST, path(name), "org.sdcontainer1.Container", "Name"),
        ("call", DEST, path(name), "org.freedesktop.DBus.Properties", "GetAll", "s",
         "org.sdcontainer1.Container"),
        ("introspect", DEST, path(name)),  # GetAll for the values
        ("call", DEST, "/org/sdcontainer1/container", "org.freedesktop.DBus.Introspectable",
         "Introspect"),  # child nodes are container names
        ("tree", DEST),
        ("call", DEST, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"),
    ]


def test_unprivileged_user_is_denied_by_policy(users: None, busybox: str, name: str) -> None:
    """Issue 13 item 4: eve could Inspect a container and read DB_PASSWORD."""
    assert sdc("run", "-d", "--name", name, "-e", SECRET, busybox, "sleep", "100").returncode == 0
    assert wait_for(lambda: path(name) in busctl("tree", DEST).stdout)
    r = call("Kill", "ss", name, "KILL", user="sdc-nobody")
    assert r.returncode != 0 and "Access denied" in r.stderr
    r = call("Run", "ssas", busybox, name + "x", "1", "true", user="sdc-nobody")
    assert r.returncode != 0 and "Access denied" in r.stderr
    for args in reads(name):
        rc, out = as_user("sdc-nobody", *args)
        assert rc != 0 and "Access denied" in out, (args, out)
        assert "hunter2" not in out and name not in out, (args, out)
    # Peer says nothing about containers and stays open (a liveness probe).
    rc, out = as_user("sdc-nobody", "call", DEST, MANAGER, "org.freedesktop.DBus.Peer", "Ping")
    assert rc == 0, out
    # A member of group sdcontainer reads everything, the environment included.
    for args in reads(name):
        rc, out = as_user("sdc-member", *args)
        assert rc == 0, (args, out)
    assert "hunter2" in as_user("sdc-member", *reads(name)[0])[1]
    assert path(name) in as_user("sdc-member", "tree", DEST)[1]
    assert prop(name, "State") == 's "running"'


def test_reads_are_authorised_by_polkit(users: None, busybox: str, name: str,
                                        tmp_path: Any) -> None:
    """The daemon's own gate, behind the bus policy: without our polkit rule even a
    member of group sdcontainer (let through by the bus) reads nothing."""
    assert sdc("run", "-d", "--name", name, "-e", SECRET, busybox, "sleep", "100").returncode == 0
    assert wait_for(lambda: path(name) in busctl("tree", DEST).stdout)
    inspect = reads(name)[0]
    aside = os.path.join(tmp_path, "rules")
    shutil.move(RULES, aside)
    try:
        assert wait_for(lambda: "not authorized" in as_user("sdc-member", *inspect)[1],
                        timeout=15, interval=0.5)
        for args in reads(name):
            rc, out = as_user("sdc-member", *args)
            assert rc != 0 and "not authorized to inspect containers" in out, (args, out)
            assert not leaks(name, out, args), (args, out)
    finally:
        shutil.move(aside, RULES)
    assert wait_for(lambda: "hunter2" in as_user("sdc-member", *inspect)[1],
                    timeout=15, interval=0.5)


# Run as another user: collect the member names of org.sdcontainer1's signals until a
# marker signal (sent by the test after the daemon's) arrives; print them.
LISTENER = """
import asyncio
from dbus_fast.aio.message_bus import MessageBus
from dbus_fast.constants import BusType, MessageType
from dbus_fast.message import Message

async def main():
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    seen, done = [], asyncio.Event()
    def on(m):
        if m.message_type == MessageType.SIGNAL:
            done.set() if m.member == "Marker" else seen.append(m.member)
    bus.add_message_handler(on)
    for rule in ("type='signal',sender='org.sdcontainer1'",
                 "type='signal',interface='org.sdcontainer1.Test'"):
        await bus.call(Message(destination="org.freedesktop.DBus",
                               path="/org/freedesktop/DBus", interface="org.freedesktop.DBus",
                               member="AddMatch", signature="s", body=[rule]))
    print("ready", flush=True)
    await asyncio.wait_for(done.wait(), 30)
    print(" ".join(seen) or "-", flush=True)

asyncio.run(main())
"""


def test_signals_reach_only_the_group(users: None, busybox: str, name: str) -> None:
    """ContainerAdded and PropertiesChanged name containers: no broadcast to everyone."""
    procs = {user: subprocess.Popen(["runuser", "-u", user, "--", "/usr/bin/python3", "-c",
                                     LISTENER], stdout=subprocess.PIPE, text=True)
             for user in ("sdc-nobody", "sdc-member")}
    try:
        for p in procs.values():
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        assert sdc("run", "-d", "--name", name, busybox, "sleep", "100").returncode == 0
        # The object is exported in the same step that sends ContainerAdded, so once
        # it is in the tree the signal has gone to the bus before our marker does.
        assert wait_for(lambda: path(name) in busctl("tree", DEST).stdout)
        assert wait_for(lambda: prop(name, "State") == 's "running"')
        busctl("emit", "/org/sdcontainer1/test", "org.sdcontainer1.Test", "Marker", check=True)
        out = {user: p.communicate(timeout=30)[0].strip() for user, p in procs.items()}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    assert out["sdc-nobody"] == "-", out
    assert "ContainerAdded" in out["sdc-member"].split(), out


def test_group_member_is_authorised_by_polkit(users: None, busybox: str, name: str,
                                              tmp_path: Any) -> None:
    assert call("Run", "ssas", busybox, name, "2", "sleep", "100").returncode == 0
    # Without our rule, polkit's default (auth_admin_keep) wants a password: refused.
    aside = os.path.join(tmp_path, "rules")
    shutil.move(RULES, aside)
    try:
        # SIGCONT probes harmlessly until polkitd has dropped the rule (it watches
        # its rules directory); then a stop is refused.
        def refused() -> bool:
            r = call("Kill", "ss", name, "CONT", user="sdc-member")
            return r.returncode != 0 and "not authorized" in r.stderr

        assert wait_for(refused, timeout=15, interval=0.5)
        r = call("Stop", "si", name, "1", user="sdc-member")
        assert r.returncode != 0 and "not authorized" in r.stderr
        assert prop(name, "State") == 's "running"'
    finally:
        shutil.move(aside, RULES)
    # With it, the member of group sdcontainer may stop the container.
    assert wait_for(lambda: call("Kill", "ss", name, "CONT", user="sdc-member").returncode == 0,
                    timeout=15, interval=0.5)
    assert call("Stop", "si", name, "1", user="sdc-member").returncode == 0
    assert prop(name, "State") == 's "exited"'


def test_bus_activation_starts_the_daemon(daemon: None) -> None:
    systemctl("stop", "sdcontainerd.service", check=True)
    try:
        r = call("List", "b", "true")
        assert r.returncode == 0, r.stderr
        assert systemctl("is-active", "sdcontainerd.service").stdout.strip() == "active"
    finally:
        systemctl("start", "sdcontainerd.service", check=True)
        assert wait_for(lambda: os.path.exists(SOCKET))
