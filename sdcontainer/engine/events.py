"""Docker-style events, fanned out to every subscriber (the /events endpoint)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class EventBus:
    """Publish-subscribe of docker event dicts."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def emit(self, kind: str, action: str, obj: Any, **attributes: str) -> None:
        """Publish ACTION on OBJ (a container record) to all subscribers."""
        if not self._queues:
            return
        now = time.time_ns()
        attrs = {"name": getattr(obj, "name", ""), **attributes}
        config = getattr(obj, "config", None)
        if config is not None:
            attrs["image"] = config.image
        event = {
            "Type": kind, "Action": action, "status": action, "id": obj.id,
            "from": attrs.get("image", ""),
            "Actor": {"ID": obj.id, "Attributes": attrs},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }
        for q in self._queues:
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every event from now on."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to Q."""
        self._queues.discard(q)
