"""Output goes to the journal from inside the scope, with docker's fields, and reads back."""

from __future__ import annotations

import json
import subprocess
import time

from .conftest import VENV_BIN, sdc, sh, wait_for


def journal(name: str) -> list[dict]:  # type: ignore[type-arg]
    """Container NAME's journal entries, by their field: journald may not know the unit
    of a sender that has exited by the time it reads its lines (docs/systemd.md)."""
    sh("journalctl", "--sync")
    out = sh("journalctl", f"CONTAINER_NAME={name}", "-o", "json", "--no-pager",
             "--all").stdout
    return [json.loads(line) for line in out.splitlines()]


def test_journal_attributes_lines_to_the_scope(busybox: str, name: str) -> None:
    # The workload outlives its lines: journald reads a sender's unit from /proc when it
    # processes a message, so the lines of a process gone by then lose _SYSTEMD_UNIT (a
    # limit of journald's for any short-lived unit; `logs` matches CONTAINER_ID_FULL).
    r = sdc("run", "-d", "--name", name, busybox, "sh", "-c",
            "echo to-out; echo to-err >&2; exec sleep 100")
    assert r.returncode == 0, r.stderr
    cid = json.loads(sdc("inspect", name).stdout)[0]["Id"]

    def messages() -> dict[str, dict]:  # type: ignore[type-arg]
        return {e["MESSAGE"]: e for e in journal(name) if e.get("CONTAINER_NAME") == name}

    assert wait_for(lambda: set(messages()) == {"to-out", "to-err"}, timeout=15), messages()
    messages_ = messages()
    sdc("rm", "-f", name)
    out, err = messages_["to-out"], messages_["to-err"]
    assert out["_SYSTEMD_UNIT"] == f"sdcontainer-{name}.scope"
    assert out["PRIORITY"] == "6" and err["PRIORITY"] == "3"
    assert out["CONTAINER_ID"] == cid[:12]
    assert out["CONTAINER_ID_FULL"] == cid
    assert out["CONTAINER_TAG"] == cid[:12]
    assert out["IMAGE_NAME"] == busybox
    assert out["SYSLOG_IDENTIFIER"] == cid[:12]


def test_logs_reads_back_both_streams(busybox: str, name: str) -> None:
    # Two pipes give no order between streams (as with docker): space the writes out.
    sdc("run", "--name", name, busybox, "sh", "-c", "echo a; sleep 0.2; echo b >&2; sleep 0.2; "
        "echo c", check=True)
    r = sdc("logs", name)
    assert r.stdout == "a\nc\n"
    assert r.stderr == "b\n"
    tail = sdc("logs", "--tail", "1", name)
    assert (tail.stdout, tail.stderr) == ("c\n", "")


def test_logs_timestamps_and_since(busybox: str, name: str) -> None:
    sdc("run", "--name", name, busybox, "echo", "stamped", check=True)
    line = sdc("logs", "-t", name).stdout.strip()
    stamp, text = line.split(" ", 1)
    assert text == "stamped" and stamp.endswith("Z") and "T" in stamp
    assert sdc("logs", "--since", str(int(time.time()) + 60), name).stdout == ""


def test_long_lines_are_split_and_rejoined(busybox: str, name: str) -> None:
    sdc("run", "--name", name, busybox, "sh", "-c",
        "head -c 40000 /dev/zero | tr '\\0' x; echo; echo end", check=True)
    entries = [e for e in journal(name) if e.get("CONTAINER_NAME") == name]
    partial = [e for e in entries if e.get("CONTAINER_PARTIAL_MESSAGE") == "true"]
    assert len(partial) == 2
    assert sdc("logs", name).stdout == "x" * 40000 + "\nend\n"


def test_logs_follow_ends_with_the_container(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sh", "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.3; done", check=True)
    proc = subprocess.run([str(VENV_BIN / "sdcontainer"), "logs", "-f", name],
                          capture_output=True, text=True, timeout=30)
    assert proc.stdout == "line1\nline2\nline3\n"


def test_binary_output_survives(busybox: str, name: str) -> None:
    subprocess.run([str(VENV_BIN / "sdcontainer"), "run", "--name", name, busybox, "printf",
                    "\\377\\376ok\\n"], capture_output=True, check=True, timeout=30)
    out = subprocess.run([str(VENV_BIN / "sdcontainer"), "logs", name], capture_output=True,
                         timeout=30).stdout
    assert out == b"\xff\xfeok\n"


def test_logs_after_wait_hold_every_line(busybox: str, name: str) -> None:
    """Once `wait` has answered, `logs` shows the whole output: the last lines may still
    be queued in journald when the container ends (docker-py's build tests read them at
    once)."""
    for _ in range(3):
        r = sdc("run", "-d", "--name", name, busybox, "seq", "1", "3000")
        assert r.returncode == 0, r.stderr
        assert sdc("wait", name).stdout.strip() == "0"
        out = sdc("logs", name).stdout.split()
        assert len(out) == 3000 and out[-1] == "3000", out[-3:]
        assert sdc("rm", name).returncode == 0
