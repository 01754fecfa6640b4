"""The daemon's side of a monitor's control socket (see monitor.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ..errors import LaunchError, SdcError


async def request(path: Path, **req: Any) -> tuple[dict[str, Any], asyncio.StreamReader,
                                                   asyncio.StreamWriter]:
    """Open a connection, send REQ, read the one-line answer; the stream stays open."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 20)
    except OSError as e:
        raise SdcError(f"cannot reach the container's monitor: {e.strerror}") from e
    writer.write(json.dumps(req).encode() + b"\n")
    await writer.drain()
    line = await reader.readline()
    if not line:
        writer.close()
        raise SdcError("the container's monitor closed the connection")
    return json.loads(line), reader, writer


async def call(path: Path, **req: Any) -> dict[str, Any]:
    """A request whose answer is all there is."""
    answer, _, writer = await request(path, **req)
    writer.close()
    return answer


async def go(path: Path) -> int:
    """Tell the monitor to start the workload; its pid, or LaunchError with docker's code."""
    answer = await call(path, op="go")
    if "error" in answer:
        raise LaunchError(str(answer["error"]), int(answer.get("code", 125)))
    return int(answer["pid"])
