"""The engine's docker-shaped state (paused, restarting) and its exec stream decoder."""

from __future__ import annotations

import struct

from sdcontainer.engine import views
from sdcontainer.engine.execs import ExecConfig, ExecSession, FrameDecoder
from sdcontainer.engine.records import Container, ContainerState
from sdcontainer.model.spec import ContainerConfig


def container(status: str, paused: bool = False) -> Container:
    return Container("a" * 64, "web", "2026-01-01T00:00:00Z",
                     ContainerConfig("busybox", "sha256:x", [], ["sleep", "1"]),
                     ContainerState(status=status, paused=paused,
                                    started_at="2026-01-01T00:00:00Z",
                                    finished_at="2026-01-01T00:00:01Z"))


def test_paused_is_shown() -> None:
    state = views.inspect(container("running", paused=True))["State"]
    assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
    row = views.summary(container("running", paused=True))
    assert row["State"] == "paused" and "(Paused)" in row["Status"]


def test_paused_only_while_running() -> None:
    state = views.inspect(container("exited", paused=True))["State"]
    assert (state["Status"], state["Paused"]) == ("exited", False)


def test_restarting_while_a_policy_waits() -> None:
    state = views.inspect(container("exited"), restarting=True)["State"]
    assert (state["Status"], state["Restarting"], state["Running"]) == \
        ("restarting", True, False)
    assert views.summary(container("exited"), restarting=True)["Status"].startswith(
        "Restarting (0)")
    assert views.inspect(container("exited"))["State"]["Restarting"] is False


def test_exec_inspect() -> None:
    s = ExecSession("e" * 64, "a" * 64, ExecConfig(["sh", "-c", "true"], tty=True))
    doc = views.exec_inspect(s)
    assert (doc["Running"], doc["ExitCode"]) == (False, None)
    assert doc["ProcessConfig"] == {"entrypoint": "sh", "arguments": ["-c", "true"],
                                    "tty": True, "user": "", "privileged": False}


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


def test_frames_split_across_reads() -> None:
    wire = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"more")
    d = FrameDecoder()
    for i in range(0, len(wire), 3):  # frames cut anywhere, headers included
        d.feed(wire[i:i + 3])
    assert bytes(d.streams[1]) == b"out\nmore"
    assert bytes(d.streams[2]) == b"err\n"
    assert bytes(d.both) == b"out\nerr\nmore"


def test_frames_past_the_limit_are_dropped() -> None:
    d = FrameDecoder(limit=5)
    d.feed(frame(1, b"abc") + frame(1, b"defgh") + frame(2, b"x"))
    assert bytes(d.streams[1]) == b"abcde"
    assert bytes(d.streams[2]) == b"x"
    assert bytes(d.both) == b"abcde"
