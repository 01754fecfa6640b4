"""Docker Engine API: pause and unpause (the engine freezes the scope), and the
healthcheck probe that a container's healthcheck timer triggers
(`sdcontainer healthcheck run`)."""

from __future__ import annotations

from ..engine.core import Engine
from .http import Request, Response, Router, json_response


class SystemdAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/containers/{id}/pause", self.pause)
        r.add("POST", "/containers/{id}/unpause", self.unpause)
        r.add("POST", "/containers/{id}/healthcheck", self.healthcheck)

    async def pause(self, req: Request) -> Response:
        await self.engine.pause(req.params["id"])
        return Response(204)

    async def unpause(self, req: Request) -> Response:
        await self.engine.pause(req.params["id"], paused=False)
        return Response(204)

    async def healthcheck(self, req: Request) -> Response:
        return json_response(await self.engine.hooks.health.probe(req.params["id"]))
