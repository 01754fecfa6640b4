"""Docker Engine API: /containers/{id}/archive, what `docker cp` uses both ways."""

from __future__ import annotations

import io
import tempfile

from ..engine import archive
from ..engine.core import Engine
from .http import Request, Response, Router, body_chunks

STAT_HEADER = "X-Docker-Container-Path-Stat"
# An upload is kept in memory up to this size, then in a temporary file.
SPOOL = 16 << 20


class ArchiveAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("HEAD", "/containers/{id}/archive", self.stat)
        r.add("GET", "/containers/{id}/archive", self.get)
        r.add("PUT", "/containers/{id}/archive", self.put, stream_body=True)

    async def stat(self, req: Request) -> Response:
        st = await archive.stat_in(self.engine, req.params["id"], req.arg("path") or "")
        return Response(200, headers={STAT_HEADER: st.header()})

    async def get(self, req: Request) -> Response:
        # Whole, not streamed: the stat header must go out with the head, and the
        # router's streamed responses carry no headers of their own yet.
        out = io.BytesIO()
        st = await archive.tar_from(self.engine, req.params["id"], req.arg("path") or "", out)
        return Response(200, out.getvalue(), "application/x-tar", {STAT_HEADER: st.header()})

    async def put(self, req: Request) -> Response:
        # The whole body is read first, whatever the answer: unread bytes would be
        # taken for the connection's next request.
        with tempfile.SpooledTemporaryFile(SPOOL) as spool:
            async for chunk in body_chunks(req.reader, req.headers, None):
                spool.write(chunk)
            spool.seek(0)
            await archive.tar_into(self.engine, req.params["id"], req.arg("path") or "",
                                   spool, req.flag("noOverwriteDirNonDir"),
                                   req.flag("copyUIDGID"))
        return Response(200)
