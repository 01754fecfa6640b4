"""Docker Engine API: pause and unpause (systemd's freezer), and the healthcheck
probe that a container's healthcheck timer triggers (`sdcontainer healthcheck run`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from ..engine.core import Engine
from ..errors import Conflict, Unsupported
from ..systemd import units
from .http import Request, Response, Router, json_response


def freeze_unsupported(name: str, verb: str) -> Unsupported:
    """The one-line reason a host cannot pause."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        why = "systemd reports that it cannot freeze the container's scope on this host"
    else:
        layout = "hybrid" if os.path.isdir("/sys/fs/cgroup/unified") else "legacy (v1)"
        why = (f"this host's cgroups cannot freeze it: systemd freezes units only on the "
               f"unified cgroup v2 hierarchy, and this host uses the {layout} one")
    return Unsupported(f"cannot {verb} container {name}: {why}")


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
        return await self._freeze(req, "pause", units.freeze)

    async def unpause(self, req: Request) -> Response:
        return await self._freeze(req, "unpause", units.thaw)

    async def _freeze(self, req: Request, action: str, call: Callable[[str], None]) -> Response:
        """FreezeUnit or ThawUnit on the container's scope, with docker's event."""
        c = self.engine.get(req.params["id"])
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        try:
            await asyncio.to_thread(call, c.scope)
        except Unsupported:
            raise freeze_unsupported(c.name, action) from None
        self.engine.events.emit("container", action, c)
        return Response(204)

    async def healthcheck(self, req: Request) -> Response:
        return json_response(await self.engine.hooks.health.probe(req.params["id"]))
