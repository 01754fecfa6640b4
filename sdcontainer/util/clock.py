"""Times as docker writes and reads them (RFC 3339 with nanosecond-free UTC)."""

from __future__ import annotations

import datetime


def now() -> str:
    """The current time in docker's RFC 3339 form."""
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def unix_time(rfc: str) -> int:
    """RFC 3339 to unix seconds (0 for an unset or malformed time)."""
    try:
        return int(datetime.datetime.fromisoformat(rfc.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
