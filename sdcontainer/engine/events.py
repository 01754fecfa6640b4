"""Docker-style events, fanned out to every subscriber (the /events endpoint)."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

# How many past events `events --since` can replay (docker keeps a bounded log too).
HISTORY = 1024


class EventBus:
    """Publish-subscribe of docker event dicts."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)

    def emit(self, kind: str, action: str, obj: Any, **attributes: str) -> None:
        """Publish ACTION on OBJ (a container record) to all subscribers."""
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
        self._history.append(event)
        for q in self._queues:
            q.put_nowait(event)

    def since(self, since_ns: int, until_ns: int | None = None) -> list[dict[str, Any]]:
        """The recent events from SINCE_NS (to UNTIL_NS), oldest first."""
        return [e for e in self._history
                if e["timeNano"] >= since_ns and (until_ns is None or e["timeNano"] <= until_ns)]

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every event from now on."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to Q."""
        self._queues.discard(q)
