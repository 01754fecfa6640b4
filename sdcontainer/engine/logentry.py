"""One piece of a container's output as `docker logs` serves it, whatever stored it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


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
