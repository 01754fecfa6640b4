"""The engine owns every behaviour: one action through REST or through D-Bus makes the
same record, the same events and the same inspect (issue 14)."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from tests.api.apiutil import UnixConnection, api
from tests.integration.conftest import sdc, sh

DEST, MANAGER = "org.sdcontainer1", "/org/sdcontainer1"
MANAGER_IFACE, CONTAINER_IFACE = "org.sdcontainer1.Manager", "org.sdcontainer1.Container"
SCRIPT = "echo out; echo err >&2; exit 3"


def object_path(name: str) -> str:
    """sd-bus's label escaping: t-1 is .../container/t_2d1."""
    label = "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in name)
    return f"/org/sdcontainer1/container/{label}"


def busctl(*args: str) -> Any:
    """busctl --json=short; the reply's data, or the failure (returncode, stderr)."""
    r = sh("busctl", "--json=short", *args, check=False)
    if r.returncode != 0:
        return r.returncode, r.stderr.strip()
    return json.loads(r.stdout)["data"] if r.stdout.strip() else None


def manager(member: str, sig: str, *args: str) -> Any:
    return busctl("call", "--", DEST, MANAGER, MANAGER_IFACE, member, sig, *args)


@dataclass
class Outcome:
    """What one run of the scenario gave."""

    exec_result: tuple[int, str, str] = (0, "", "")
    paused: bool = False
    inspect_paused: dict[str, Any] = field(default_factory=dict)
    inspect_stopped: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, ...]] = field(default_factory=list)


class FrontEnd(Protocol):
    def run(self, image: str, name: str) -> None: ...
    def exec(self, name: str) -> tuple[int, str, str]: ...
    def kill(self, name: str, sig: str) -> None: ...
    def pause(self, name: str, paused: bool) -> bool: ...
    def stop(self, name: str) -> None: ...
    def rename(self, name: str, new: str) -> None: ...
    def inspect(self, name: str) -> dict[str, Any]: ...
    def remove(self, name: str) -> None: ...


class Rest:
    """The sdcontainer CLI (exec over the hijacked stream) and raw REST calls."""

    def run(self, image: str, name: str) -> None:
        assert api("POST", f"/containers/create?name={name}",
                   {"Image": image, "Cmd": ["sleep", "100"]})[0] == 201
        assert api("POST", f"/containers/{name}/start")[0] == 204

    def exec(self, name: str) -> tuple[int, str, str]:
        r = sdc("exec", name, "sh", "-c", SCRIPT)
        return r.returncode, r.stdout, r.stderr

    def kill(self, name: str, sig: str) -> None:
        assert api("POST", f"/containers/{name}/kill?signal={sig}")[0] == 204

    def pause(self, name: str, paused: bool) -> bool:
        status, body, _ = api("POST", f"/containers/{name}/{'pause' if paused else 'unpause'}")
        if status != 204:
            assert status == 501 and "cannot pause" in body["message"], (status, body)
            assert "\n" not in body["message"]
        return status == 204

    def stop(self, name: str) -> None:
        assert api("POST", f"/containers/{name}/stop?t=1")[0] == 204

    def rename(self, name: str, new: str) -> None:
        assert api("POST", f"/containers/{name}/rename?name={new}")[0] == 204

    def inspect(self, name: str) -> dict[str, Any]:
        status, body, _ = api("GET", f"/containers/{name}/json")
        assert status == 200, body
        return dict(body)

    def remove(self, name: str) -> None:
        assert api("DELETE", f"/containers/{name}")[0] == 204


class DBus:
    """org.sdcontainer1 through busctl."""

    def run(self, image: str, name: str) -> None:
        assert isinstance(manager("Run", "ssas", image, name, "2", "sleep", "100"), list)

    def exec(self, name: str) -> tuple[int, str, str]:
        data = busctl("call", "--", DEST, object_path(name), CONTAINER_IFACE, "Exec", "as",
                      "3", "sh", "-c", SCRIPT)
        assert isinstance(data, list), data
        return int(data[0]), str(data[1]), str(data[2])

    def kill(self, name: str, sig: str) -> None:
        assert manager("Kill", "ss", name, sig) is None

    def pause(self, name: str, paused: bool) -> bool:
        answer = manager("Pause" if paused else "Unpause", "s", name)
        if answer is not None:
            assert "cannot pause" in answer[1], answer
            assert "\n" not in answer[1]
        return answer is None

    def stop(self, name: str) -> None:
        assert manager("Stop", "si", name, "1") is None

    def rename(self, name: str, new: str) -> None:
        assert manager("Rename", "ss", name, new) is None

    def inspect(self, name: str) -> dict[str, Any]:
        data = manager("Inspect", "s", name)
        assert isinstance(data, list), data
        return dict(json.loads(data[0]))

    def remove(self, name: str) -> None:
        assert manager("Remove", "sb", name, "false") is None


def comparable(doc: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """An inspect document without what differs between two containers of one image
    (ids, names, times, pids, addresses)."""
    text = json.dumps(doc)
    for word in (doc["Id"], doc["Id"][:12], *sorted(names, key=len, reverse=True)):
        text = text.replace(word, "X")
    out = json.loads(text)
    for key in ("Created", "NetworkSettings", "Systemd"):
        out.pop(key, None)
    for key in ("StartedAt", "FinishedAt", "Pid"):
        out["State"].pop(key, None)
    return dict(out)


def event_key(e: dict[str, Any]) -> tuple[str, ...]:
    attrs = e["Actor"]["Attributes"]
    return (e["Action"], *(f"{k}={attrs[k]}" for k in ("exitCode", "signal") if k in attrs))


def scenario(front: FrontEnd, image: str) -> Outcome:
    """Run, exec, kill (a signal sleep ignores), pause, stop, rename, remove: through FRONT,
    with every event of the container recorded."""
    name, new = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    conn = UnixConnection(timeout=60)
    filters = json.dumps({"container": [name, new]})
    conn.request("GET", f"/events?filters={urllib.parse.quote(filters)}")
    stream = conn.getresponse()  # the head comes once the daemon has subscribed us
    assert stream.status == 200
    out = Outcome()
    try:
        front.run(image, name)
        out.exec_result = front.exec(name)
        front.kill(name, "SIGWINCH")
        out.paused = front.pause(name, True)
        if out.paused:
            out.inspect_paused = comparable(front.inspect(name), (name, new))
            assert front.pause(name, False)
        front.stop(name)
        front.rename(name, new)
        out.inspect_stopped = comparable(front.inspect(new), (name, new))
        front.remove(new)
        while True:
            line = stream.readline()
            assert line, "the event stream ended before the container's destroy"
            event = json.loads(line)
            out.events.append(event_key(event))
            if event["Action"] == "destroy":
                break
    finally:
        conn.close()
        sdc("rm", "-f", name)
        sdc("rm", "-f", new)
    return out


@pytest.fixture(scope="module")
def outcomes(busybox: str) -> Iterator[dict[str, Outcome]]:
    yield {"rest": scenario(Rest(), busybox), "dbus": scenario(DBus(), busybox)}


def test_same_events(outcomes: dict[str, Outcome]) -> None:
    rest, dbus = outcomes["rest"], outcomes["dbus"]
    assert rest.events == dbus.events
    cmd = "sh -c 'echo out; echo err >&2; exit 3'"
    expected = [("create",), ("start",), (f"exec_create: {cmd}",), (f"exec_start: {cmd}",),
                ("exec_die", "exitCode=3"), ("kill", "signal=28")]
    if rest.paused:
        expected += [("pause",), ("unpause",)]
    expected += [("die", "exitCode=137"), ("stop",), ("rename",), ("destroy",)]
    assert rest.events == expected


def test_same_inspect(outcomes: dict[str, Outcome]) -> None:
    rest, dbus = outcomes["rest"], outcomes["dbus"]
    assert rest.inspect_stopped == dbus.inspect_stopped
    state = rest.inspect_stopped["State"]
    assert (state["Status"], state["Running"], state["Paused"], state["Restarting"],
            state["ExitCode"]) == ("exited", False, False, False, 137)
    assert rest.inspect_stopped["Name"] == "/X"
    assert rest.paused == dbus.paused
    if rest.paused:
        assert rest.inspect_paused == dbus.inspect_paused
        assert rest.inspect_paused["State"]["Status"] == "paused"
        assert rest.inspect_paused["State"]["Paused"] is True


def test_exec_exit_code_and_output(outcomes: dict[str, Outcome]) -> None:
    assert outcomes["rest"].exec_result == (3, "out\n", "err\n")
    assert outcomes["dbus"].exec_result == (3, "out\n", "err\n")


def test_dbus_exec_missing_command(busybox: str, name: str) -> None:
    DBus().run(busybox, name)
    data = busctl("call", "--", DEST, object_path(name), CONTAINER_IFACE, "Exec", "as",
                  "1", "no-such-command")
    assert data[0] == 127 and "executable file not found" in data[2], data


def test_exec_killed_with_its_container(busybox: str, name: str) -> None:
    """A session whose container dies under it ends with 137, told by the monitor going
    away, not by a poll that gave up."""
    Rest().run(busybox, name)
    status, body, _ = api("POST", f"/containers/{name}/exec", {"Cmd": ["sleep", "100"]})
    assert status == 201
    eid = body["Id"]
    assert api("POST", f"/exec/{eid}/start", {"Detach": True})[0] == 200
    assert api("GET", f"/exec/{eid}/json")[1]["Running"] is True
    conn = UnixConnection(timeout=30)
    filters = json.dumps({"event": ["exec_die"], "container": [name]})
    conn.request("GET", f"/events?filters={urllib.parse.quote(filters)}")
    stream = conn.getresponse()
    try:
        assert api("POST", f"/containers/{name}/kill")[0] == 204
        event = json.loads(stream.readline())
    finally:
        conn.close()
    assert event["Actor"]["Attributes"]["execID"] == eid
    assert event["Actor"]["Attributes"]["exitCode"] == "137"
    info = api("GET", f"/exec/{eid}/json")[1]
    assert info["Running"] is False and info["ExitCode"] == 137, info


def test_run_rm_removes_before_returning(busybox: str, name: str) -> None:
    """`run --rm` returns once the container is gone (wait --condition removed is a
    future the removal completes, no tick)."""
    r = sdc("run", "--rm", "--name", name, busybox, "sh", "-c", "exit 4")
    assert r.returncode == 4, r.stderr
    assert api("GET", f"/containers/{name}/json")[0] == 404
