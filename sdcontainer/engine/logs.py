"""Read a container's output back from the journal.

Entries carry CONTAINER_ID_FULL (see logsink.py), so every run of a
container is found whatever its scope was called.  journalctl does the
reading: it is the journal's own reader, handles rotation and remote
journals, and `-f` waits with inotify.  A follow ends once the container
has exited and the journal has been synced, so no last line is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

from ..util import run


@dataclass(frozen=True)
class LogEntry:
    """One piece of output."""

    stream: int  # 1 stdout, 2 stderr
    data: bytes  # with its newline, unless it was a partial message
    timestamp_us: int


def rfc3339(us: int) -> str:
    """Microseconds since the epoch as docker's RFC 3339 with nanoseconds."""
    t = datetime.datetime.fromtimestamp(us / 1e6, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{us % 1_000_000:06d}000Z"


def parse_since(value: str | None) -> str | None:
    """docker's since/until (unix seconds, possibly fractional) as journalctl's @SECONDS."""
    if not value or value == "0":
        return None
    try:
        return f"@{float(value):.6f}".rstrip("0").rstrip(".")
    except ValueError:
        from ..errors import InvalidArgument

        raise InvalidArgument(f"invalid time value {value!r}") from None


def _entry(raw: bytes) -> tuple[LogEntry, str] | None:
    try:
        fields: dict[str, Any] = json.loads(raw)
    except ValueError:
        return None
    message = fields.get("MESSAGE")
    if isinstance(message, list):  # journalctl's form for non-UTF-8 data
        data = bytes(message)
    elif isinstance(message, str):
        data = message.encode()
    else:
        data = b""
    if fields.get("CONTAINER_PARTIAL_MESSAGE") != "true":
        data += b"\n"
    stream = 2 if fields.get("PRIORITY") == "3" else 1
    return LogEntry(stream, data, int(fields.get("__REALTIME_TIMESTAMP", 0))), \
        str(fields.get("__CURSOR", ""))


def _argv(container_id: str, tail: int | None, since: str | None, until: str | None,
          follow: bool, after_cursor: str | None = None) -> list[str]:
    argv = ["journalctl", "--no-pager", "--all", "-o", "json", "-q",
            f"CONTAINER_ID_FULL={container_id}"]
    if after_cursor:
        argv.append(f"--after-cursor={after_cursor}")
    elif tail is not None:
        argv += ["-n", str(tail)]
    if since:
        argv += ["--since", since]
    if until:
        argv += ["--until", until]
    if follow:
        argv.append("-f")
    return argv


async def _lines(argv: list[str]) -> AsyncIterator[bytes]:
    proc = await run.spawn(argv)
    assert proc.stdout is not None
    try:
        while line := await proc.stdout.readline():
            yield line
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()


async def read(container_id: str, *, tail: int | None = None, since: str | None = None,
               until: str | None = None, follow: bool = False,
               exited: Awaitable[Any] | None = None) -> AsyncIterator[LogEntry]:
    """The container's log entries; with FOLLOW, until EXITED completes."""
    cursor = None
    if not follow or exited is None:
        async for line in _lines(_argv(container_id, tail, since, until, False)):
            parsed = _entry(line)
            if parsed:
                yield parsed[0]
        return
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for line in _lines(_argv(container_id, tail, since, until, True)):
                await queue.put(line)
        finally:
            await queue.put(None)

    def take(line: bytes) -> list[LogEntry]:
        """LINE's entry (none if unreadable), remembering its cursor for the last read."""
        nonlocal cursor
        parsed = _entry(line)
        if not parsed:
            return []
        cursor = parsed[1] or cursor
        return [parsed[0]]

    task = asyncio.ensure_future(pump())
    done = asyncio.ensure_future(exited)
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            finished, _ = await asyncio.wait({getter, done}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                item = getter.result()
                if item is None:
                    return
                for entry in take(item):
                    yield entry
                continue
            getter.cancel()
            break
        # The container is gone: sync the journal, drain what -f had, then read the rest.
        await asyncio.to_thread(run.run, ["journalctl", "--sync"], check=False)
        task.cancel()
        while not queue.empty():
            item = queue.get_nowait()
            if item is None:
                break
            for entry in take(item):
                yield entry
        rest = _argv(container_id, None if cursor else tail, since, until, False, cursor)
        async for line in _lines(rest):
            parsed = _entry(line)
            if parsed:
                yield parsed[0]
    finally:
        task.cancel()
        done.cancel()
