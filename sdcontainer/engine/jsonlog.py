"""Read a json-file (or local) log back: docker's JSON lines, as the supervisor
writes them (runtime/logsink.JsonFile), across rotated files.

The files are opened oldest first before anything is read, so a rotation while
we read loses nothing already there.  A follow keeps the newest file open and
looks for more every FOLLOW_POLL seconds (no inotify in the standard library;
docker's reader polls too when it must); when the path names a new file, the old
one is read to its end and the new one taken up.  Once the container has exited,
its supervisor has written everything: the rest is read and the follow ends.
Reads run in worker threads: a log may be large.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import os
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, BinaryIO

from .logentry import LogEntry

FOLLOW_POLL = 0.2  # seconds
BATCH = 1 << 20  # bytes read per worker-thread call
STREAMS = {"stdout": 1, "stderr": 2}


def parse_time_us(text: str) -> int:
    """RFC 3339 with up to nanoseconds ("...T10:00:00.123456789Z") as microseconds
    since the epoch (0 if unreadable)."""
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        t = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.UTC)
    except ValueError:
        return 0
    digits = (frac + "000000")[:6]
    return int(t.timestamp()) * 1_000_000 + (int(digits) if digits.isdigit() else 0)


def parse_line(raw: bytes) -> LogEntry | None:
    """One JSON line as an entry, or None if it is not one."""
    try:
        doc: dict[str, Any] = json.loads(raw)
        text = doc["log"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(text, str):
        return None
    return LogEntry(STREAMS.get(str(doc.get("stream")), 1), text.encode(),
                    parse_time_us(str(doc.get("time", ""))))


def files(path: str, max_file: int) -> list[str]:
    """PATH's rotated files, oldest first, then PATH: those that exist."""
    names = [f"{path}.{n}" for n in range(max(max_file, 1) - 1, 0, -1)] + [path]
    return [n for n in names if os.path.exists(n)]


class Reader:
    """Whole lines from a sequence of open files, in order; the last one may grow."""

    def __init__(self, path: str, max_file: int) -> None:
        self.path = path
        self.handles: list[BinaryIO] = []
        for name in files(path, max_file):
            with contextlib.suppress(OSError):
                self.handles.append(open(name, "rb"))  # noqa: SIM115 (closed in close())

    def batch(self) -> list[bytes]:
        """Up to BATCH bytes of whole lines ([] when there are none for now); an
        unfinished last line (being written) stays for the next call."""
        lines: list[bytes] = []
        size = 0
        while self.handles and size < BATCH:
            f = self.handles[0]
            line = f.readline()
            if line.endswith(b"\n"):
                lines.append(line)
                size += len(line)
                continue
            if len(self.handles) > 1:  # a finished file: go on with the next
                self.handles.pop(0).close()
                continue
            f.seek(-len(line), os.SEEK_CUR)
            break
        return lines

    def last(self, n: int) -> list[bytes]:
        """The last N whole lines of all the files, read from their ends (a tail of a
        large log reads little of it).  Afterwards the newest file alone is open, just
        after them, for a follow to go on from."""
        found: list[bytes] = []
        for i in range(len(self.handles) - 1, -1, -1):
            f = self.handles[i]
            pos = f.seek(0, os.SEEK_END)
            buf = b""
            # One newline more than the lines wanted: where the first of them begins.
            while pos > 0 and buf.count(b"\n") <= n - len(found):
                step = min(BATCH, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
            whole = buf[:buf.rfind(b"\n") + 1]  # an unfinished last line is not one yet
            if i == len(self.handles) - 1:
                f.seek(pos + len(whole))
            lines = [line + b"\n" for line in whole.split(b"\n")[:-1]]
            if pos > 0:
                lines = lines[1:]  # the end of an earlier line
            found[:0] = lines[max(len(lines) - (n - len(found)), 0):]
            if len(found) >= n:
                break
        for f in self.handles[:-1]:
            f.close()
        del self.handles[:-1]
        return found

    def rotated(self) -> bool:
        """If PATH now names another file than our newest: read ours to the end, then
        take up the new one.  Whether it did."""
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        if self.handles:
            mine = os.fstat(self.handles[-1].fileno())
            if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                return False
        with contextlib.suppress(OSError):
            self.handles.append(open(self.path, "rb"))  # noqa: SIM115
            return True
        return False

    def close(self) -> None:
        """Close every file."""
        for f in self.handles:
            f.close()
        self.handles = []


def _keep(entry: LogEntry, since_us: int | None) -> bool:
    return since_us is None or entry.timestamp_us >= since_us


async def read(path: str, max_file: int, *, tail: int | None = None,
               since: float | None = None, until: float | None = None,
               follow: bool = False,
               exited: Awaitable[Any] | None = None) -> AsyncGenerator[LogEntry, None]:
    """The entries of the json log at PATH (and its MAX_FILE-1 rotated files), from
    SINCE to UNTIL (unix seconds); the last TAIL only; with FOLLOW, until EXITED."""
    since_us = int(since * 1e6) if since else None
    until_us = int(until * 1e6) if until else None
    reader = await asyncio.to_thread(Reader, path, max_file)
    try:
        if tail is not None and since_us is None:
            # The follow, if any, goes on after them.
            for raw in await asyncio.to_thread(reader.last, tail):
                entry = parse_line(raw)
                if entry is None:
                    continue
                if until_us is not None and entry.timestamp_us > until_us:
                    return
                yield entry
        elif tail is not None:
            last: collections.deque[LogEntry] = collections.deque(maxlen=tail)
            while (lines := await asyncio.to_thread(reader.batch)) and tail:
                last.extend(e for e in map(parse_line, lines) if e and _keep(e, since_us))
            if follow:  # the tail is what is there now; the follow goes on after it
                while await asyncio.to_thread(reader.batch):
                    pass
            for entry in last:
                if until_us is not None and entry.timestamp_us > until_us:
                    return
                yield entry
        if tail is not None and not follow:
            return
        done = asyncio.ensure_future(exited) if follow and exited is not None else None
        try:
            while True:
                lines = await asyncio.to_thread(reader.batch)
                for parsed in map(parse_line, lines):
                    if parsed is None or not _keep(parsed, since_us):
                        continue
                    if until_us is not None and parsed.timestamp_us > until_us:
                        return
                    yield parsed
                if lines:
                    continue
                if follow and await asyncio.to_thread(reader.rotated):
                    continue
                if done is None:
                    return
                if done.done():
                    # Exited: everything is written; read it all, then stop.
                    done = None
                    continue
                await asyncio.wait({done}, timeout=FOLLOW_POLL)
        finally:
            if done is not None:
                done.cancel()
    finally:
        reader.close()
