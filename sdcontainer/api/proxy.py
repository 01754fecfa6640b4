"""Copy bytes both ways between a hijacked client connection and a monitor."""

from __future__ import annotations

import asyncio
import contextlib


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, half_close: bool) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        return
    if half_close and dst.can_write_eof():
        # The client closed its sending side (docker's CloseWrite): the workload's
        # stdin ends, but its output keeps coming.
        with contextlib.suppress(OSError):
            dst.write_eof()


async def pipe(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
               mon_r: asyncio.StreamReader, mon_w: asyncio.StreamWriter) -> None:
    """Until the monitor side ends: client input to the monitor, its output to the client."""
    upstream = asyncio.ensure_future(_copy(client_r, mon_w, True))
    try:
        await _copy(mon_r, client_w, False)
    finally:
        upstream.cancel()
        mon_w.close()
        with contextlib.suppress(OSError):
            await client_w.drain()
