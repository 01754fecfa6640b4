"""A container's output, as docker's log drivers and Kubernetes' CRI record it.

The monitor feeds every chunk of stdout (1) and stderr (2) to an `OutputLog`,
which cuts it into lines (a line longer than MAX_LINE goes in MAX_LINE pieces,
every piece but the last marked partial, as docker and containerd do) and hands
each piece to its writers:

- `JournalSink` (log driver journald): sd_journal_sendv from the monitor, which
  lives in the container's scope, so journald attributes the entry to the scope
  (`journalctl -u sdcontainer-NAME.scope`) and the native protocol carries
  docker's fields (CONTAINER_NAME, CONTAINER_ID, ...), which the stdout stream
  protocol cannot;
- `JsonFile` (json-file, and local stored the same way): docker's
  `{"log":...,"stream":...,"time":...}` lines, rotated by size;
- `CriFile` (a CRI container's log): `TIME STREAM P|F CONTENT` lines, as kubelet
  reads them.

native/sdc-monitor.c writes the same bytes (json_write, cri_write): keep them
in step.
"""

from __future__ import annotations

import json
import logging
import os
import time
from types import ModuleType
from typing import Protocol

from ..model.spec import LaunchSpec

log = logging.getLogger(__name__)

# docker's journald driver, docker's copier and containerd's CRI all cut at 16 KiB.
MAX_LINE = 16 * 1024
PRIORITY = {1: "6", 2: "3"}  # stdout: info, stderr: err
STREAM = {1: "stdout", 2: "stderr"}
LOG_FILE_MODE = 0o640  # docker's and containerd's


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC, which docker and containerd write: nanoseconds with
    trailing zeros trimmed (no fraction at all on a whole second)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        (f".{digits}" if digits else "") + "Z"


class Writer(Protocol):
    """One destination of a container's output, a piece at a time."""

    def write(self, stream: int, message: bytes, partial: bool, ns: int) -> None:
        """MESSAGE (no newline) from STREAM at NS; PARTIAL: the line goes on."""

    def reopen(self) -> None:
        """Close and open the destination again (after someone rotated it)."""


class JournalSink:
    """Pieces of output as journal entries, with docker's fields."""

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = {k: v for k, v in fields.items() if v}
        self._broken = False
        # Imported here: an exec session (monitor.exec_session_main) never sends to the
        # journal and need not pay pystemd's import; the zygote has it loaded already.
        import pystemd.journal
        self._journal: ModuleType = pystemd.journal

    def write(self, stream: int, message: bytes, partial: bool, ns: int) -> None:
        """One entry; journald stamps its own time."""
        extra = {"CONTAINER_PARTIAL_MESSAGE": "true"} if partial else {}
        try:
            self._journal.sendv(
                f"PRIORITY={PRIORITY[stream]}",
                MESSAGE=message,
                **self._fields,
                **extra,
            )
        except Exception as e:  # the journal may be gone at shutdown; output must not block
            if not self._broken:
                log.warning("cannot write to the journal: %s", e)
                self._broken = True

    def reopen(self) -> None:
        """Nothing to reopen: every entry is a datagram of its own."""


class AppendFile:
    """A log file opened for appending (created 0640, parent directories made), that
    drops what it cannot write (a full disk) rather than stall the container."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self.size = 0
        self._broken = False
        self.open()

    def open(self, truncate: bool = False) -> None:
        """Open PATH (again), creating it and its directories as needed."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self.fd = os.open(self.path, flags | (os.O_TRUNC if truncate else 0), LOG_FILE_MODE)
            self.size = os.fstat(self.fd).st_size
        except OSError as e:
            self._complain(e)

    def append(self, data: bytes) -> None:
        """All of DATA, or (on an error) none of what is left."""
        view = memoryview(data)
        while view and self.fd >= 0:
            try:
                n = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError as e:
                self._complain(e)
                return
            view = view[n:]
            self.size += n

    def _complain(self, e: OSError) -> None:
        if not self._broken:
            log.warning("cannot write the log file %s: %s", self.path, e)
            self._broken = True


class JsonFile:
    """docker's json-file driver: a JSON object a line, rotated once the file has
    reached MAX_SIZE bytes (0: never) into PATH.1 ... PATH.<MAX_FILE-1>."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1) -> None:
        self.max_size = max_size
        self.max_file = max(max_file, 1)
        self.file = AppendFile(path)

    def write(self, stream: int, message: bytes, partial: bool, ns: int) -> None:
        """One line: the piece, with its newline unless PARTIAL (as docker writes it)."""
        if self.max_size and self.file.size >= self.max_size:
            self.rotate()
        text = message.decode(errors="replace") + ("" if partial else "\n")
        line = json.dumps({"log": text, "stream": STREAM[stream], "time": rfc3339nano(ns)},
                          ensure_ascii=False, separators=(",", ":"))
        self.file.append(line.encode() + b"\n")

    def rotate(self) -> None:
        """PATH.N-1 ... PATH.1 move up one (the oldest goes), PATH becomes PATH.1 and a
        new PATH begins (with MAX_FILE 1: PATH starts over, empty)."""
        path = self.file.path
        try:
            for n in range(self.max_file - 1, 1, -1):
                if os.path.exists(f"{path}.{n - 1}"):
                    os.replace(f"{path}.{n - 1}", f"{path}.{n}")
            if self.max_file > 1:
                os.replace(path, f"{path}.1")
        except OSError as e:
            log.warning("cannot rotate the log file %s: %s", path, e)
        self.file.open(truncate=True)

    def reopen(self) -> None:
        """Open PATH again, appending."""
        self.file.open()


class CriFile:
    """The CRI's container log (kubelet's reader): `TIME STREAM TAG CONTENT` lines,
    TAG P for a piece of a longer line and F for a line's last piece."""

    def __init__(self, path: str) -> None:
        self.file = AppendFile(path)

    def write(self, stream: int, message: bytes, partial: bool, ns: int) -> None:
        """One line, the piece's bytes as they came."""
        head = f"{rfc3339nano(ns)} {STREAM[stream]} {'P' if partial else 'F'} ".encode()
        self.file.append(head + message + b"\n")

    def reopen(self) -> None:
        """Open PATH again (kubelet renamed it away, a new file begins)."""
        self.file.open()


class OutputLog:
    """Byte chunks of stdout and stderr, cut into lines for every writer."""

    def __init__(self, writers: list[Writer]) -> None:
        self.writers = writers
        self._pending: dict[int, bytes] = {1: b"", 2: b""}

    def _send(self, stream: int, message: bytes, partial: bool) -> None:
        ns = time.time_ns()
        for writer in self.writers:
            writer.write(stream, message, partial, ns)

    def feed(self, stream: int, data: bytes) -> None:
        """Add DATA read from STREAM; whole lines are sent at once."""
        buf = self._pending[stream] + data
        start = 0
        while True:
            nl = buf.find(b"\n", start, start + MAX_LINE + 1)
            if nl >= 0:
                self._send(stream, buf[start:nl], False)
                start = nl + 1
            elif len(buf) - start > MAX_LINE:
                self._send(stream, buf[start:start + MAX_LINE], True)
                start += MAX_LINE
            else:
                break
        self._pending[stream] = buf[start:]

    def flush(self) -> None:
        """Send what is left without a newline, marked partial so readers add none."""
        for stream, buf in self._pending.items():
            if buf:
                self._send(stream, buf, True)
            self._pending[stream] = b""

    def reopen(self) -> None:
        """Every writer opens its file again."""
        for writer in self.writers:
            writer.reopen()


def for_spec(spec: LaunchSpec) -> OutputLog | None:
    """The writers SPEC asks for (None: none at all, the output goes to clients only)."""
    writers: list[Writer] = []
    if spec.log_driver == "journald":
        writers.append(JournalSink(spec.journal_fields))
    elif spec.log_driver == "json-file" and spec.json_log:
        writers.append(JsonFile(spec.json_log, spec.log_max_size, spec.log_max_file))
    if spec.cri_log_path:
        writers.append(CriFile(spec.cri_log_path))
    return OutputLog(writers) if writers else None
