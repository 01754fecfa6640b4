"""Read a container's output back, from wherever its log driver put it.

journald: entries carry CONTAINER_ID_FULL (see runtime/logsink.py), so every
run of a container is found whatever its scope was called.  journalctl does
the reading: it is the journal's own reader, handles rotation and remote
journals, and `-f` waits with inotify.  A follow ends once the container has
exited and the journal has been synced, so no last line is lost.

json-file and local: the container's JSON log files (engine/jsonlog.py).
none: nothing to read, as docker says.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any

from ..errors import InvalidArgument, Unsupported
from ..util import run
from . import jsonlog
from .logconfig import log_settings
from .logentry import LogEntry, rfc3339
from .records import Container

__all__ = ["LogEntry", "check_readable", "parse_since", "read", "rfc3339"]


def parse_since(value: str | None) -> float | None:
    """docker's since/until: unix seconds, possibly fractional (None: not given)."""
    if not value or value == "0":
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidArgument(f"invalid time value {value!r}") from None


def check_readable(c: Container) -> None:
    """Refuse to read C's logs if its driver keeps none (docker's words and status)."""
    if log_settings(c.dir, c.config).driver == "none":
        raise Unsupported("configured logging driver does not support reading")


async def read(c: Container, *, tail: int | None = None, since: float | None = None,
               until: float | None = None, follow: bool = False,
               exited: Awaitable[Any] | None = None) -> AsyncIterator[LogEntry]:
    """C's log entries from SINCE to UNTIL (unix seconds), the last TAIL only; with
    FOLLOW, until EXITED completes.  Nothing for the none driver."""
    settings = log_settings(c.dir, c.config)
    if settings.file_based:
        entries = jsonlog.read(settings.path, settings.max_file, tail=tail, since=since,
                               until=until, follow=follow, exited=exited)
    elif settings.driver == "journald":
        if not follow and not c.running:
            async for entry in _read_ended(c, tail, since, until):
                yield entry
            return
        entries = read_journal(c.id, tail=tail, since=since, until=until, follow=follow,
                               exited=exited)
    else:
        return
    # Closed at once if our reader stops early (a client gone): no journalctl stays.
    async with contextlib.aclosing(entries):
        async for entry in entries:
            yield entry


async def _read_ended(c: Container, tail: int | None, since: float | None,
                      until: float | None) -> AsyncIterator[LogEntry]:
    """The journal entries of C, which is not running.  Its last lines may still wait in
    journald's queue: after `wait` has answered, `logs` must show them all, as docker's
    do.  `journalctl --sync` has journald process what it queued first; a container that
    ended moments ago and shows nothing gets a second sync and look (journald may not yet
    have taken its stream's connection when the first came)."""
    for attempt in range(2):
        await asyncio.to_thread(run.run, ["journalctl", "--sync"], check=False)
        found = False
        entries = read_journal(c.id, tail=tail, since=since, until=until)
        async with contextlib.aclosing(entries):
            async for entry in entries:
                found = True
                yield entry
        if found or attempt or not _ended_just_now(c):
            return


def _ended_just_now(c: Container) -> bool:
    """Whether C's run ended in the last five seconds."""
    try:
        ended = datetime.datetime.fromisoformat(c.state.finished_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.datetime.now(datetime.UTC) - ended).total_seconds() < 5


def _journal_time(seconds: float | None) -> str | None:
    """Unix seconds as journalctl's @SECONDS."""
    return None if seconds is None else f"@{seconds:.6f}".rstrip("0").rstrip(".")


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


def _argv(container_id: str, tail: int | None, since_s: float | None,
          until_s: float | None, follow: bool, after_cursor: str | None = None) -> list[str]:
    argv = ["journalctl", "--no-pager", "--all", "-o", "json", "-q",
            f"CONTAINER_ID_FULL={container_id}"]
    if after_cursor:
        argv.append(f"--after-cursor={after_cursor}")
    elif tail is not None:
        argv += ["-n", str(tail)]
    since, until = _journal_time(since_s), _journal_time(until_s)
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
    done = False
    try:
        while line := await proc.stdout.readline():
            yield line
        done = True
    finally:
        # At EOF journalctl is exiting by itself: kill() would poll() it and could reap it
        # before asyncio's child watcher does ("Unknown child process pid N" warnings).
        if not done and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()


async def read_journal(container_id: str, *, tail: int | None = None,
                       since: float | None = None, until: float | None = None,
                       follow: bool = False,
                       exited: Awaitable[Any] | None = None
                       ) -> AsyncGenerator[LogEntry, None]:
    """The journal's entries of container CONTAINER_ID; with FOLLOW, until EXITED
    completes."""
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
