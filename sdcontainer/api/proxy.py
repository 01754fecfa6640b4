"""Copy bytes both ways between a hijacked client connection and a monitor."""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str | None) -> bytes:
    """docker's detachKeys ("ctrl-p,ctrl-q": single characters or ctrl-<a-z@[\\]^_>) as
    the bytes a terminal sends for them."""
    out = bytearray()
    for part in (spec or DEFAULT_DETACH_KEYS).split(","):
        key = part[5:] if part.startswith("ctrl-") else ""
        if len(part) == 1:
            out.append(ord(part))
        elif len(key) == 1 and ((key.isalpha() and key.islower()) or key in "@[\\]^_"):
            out.append(ord(key.upper()) & 0x1F)
        else:
            raise InvalidArgument(f"Invalid escape keys ({spec}) provided")
    return bytes(out)


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, half_close: bool,
                detach_keys: bytes = b"") -> bool:
    """Copy until EOF; True if the client typed DETACH_KEYS (held back, not sent) instead."""
    held = b""
    try:
        while data := await src.read(65536):
            if detach_keys:
                # docker's escape proxy: a partial sequence waits for the next key
                out = bytearray()
                for byte in data:
                    held += bytes([byte])
                    if detach_keys.startswith(held):
                        if held == detach_keys:
                            if out:
                                dst.write(out)
                                await dst.drain()
                            return True
                        continue
                    out += held
                    held = b""
                data = bytes(out)
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        return False
    if half_close and dst.can_write_eof():
        # The client closed its sending side (docker's CloseWrite): the workload's
        # stdin ends, but its output keeps coming.
        with contextlib.suppress(OSError):
            dst.write_eof()
    return False


async def pipe(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
               mon_r: asyncio.StreamReader, mon_w: asyncio.StreamWriter,
               detach_keys: bytes = b"") -> bool:
    """Until the monitor side ends, or the client types DETACH_KEYS (then the connection
    closes and the workload goes on): client input to the monitor, its output to the
    client.  Whether the client detached."""
    upstream = asyncio.ensure_future(_copy(client_r, mon_w, True, detach_keys))
    downstream = asyncio.ensure_future(_copy(mon_r, client_w, False))
    detached = False
    try:
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        detached = upstream.done() and not upstream.cancelled() and upstream.result()
        if not detached:
            await downstream
    finally:
        upstream.cancel()
        downstream.cancel()
        mon_w.close()
        with contextlib.suppress(OSError):
            await client_w.drain()
    return bool(detached)
