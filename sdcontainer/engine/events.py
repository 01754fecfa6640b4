"""Docker-style events, fanned out to every subscriber (the /events endpoint), and
the events of what others did to a container's scope (`systemctl stop`/`kill`,
`machinectl terminate`/`kill`): see ScopeWatch."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Mapping
from typing import Any

from dbus_fast import Variant

from ..errors import InvalidArgument
from ..systemd.bus import UNIT_IFACE, Signal
from ..systemd.units import object_path
from ..util.signals import parse_signal
from .records import Container

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


# Our scopes' object paths: /org/freedesktop/systemd1/unit/sdcontainer_2dNAME_2escope.
SCOPE_PATH_PREFIX = object_path("sdcontainer-")
SCOPE_PATH_SUFFIX = object_path(".scope").rsplit("/", 1)[1]
MAX_SIGNAL = 64


class ScopeWatch:
    """The `kill` and `stop` events of what was done to our scopes behind our back.

    A stop job on a running container's scope that we did not ask for (its
    ActiveState turns "deactivating", and the record has no stop_requested) is
    docker's stop: `kill` with the scope's KillSignal at once, then, after `die`,
    `stop`.  `systemctl kill` runs no job and systemd says nothing of it: a workload
    that ends with status 128+N (N a signal) which no kill of ours sent, no stop
    explains and the OOM killer did not cause, gets a `kill` with signal N before
    its `die`.  (The monitor records a signal death as 128+N, as a shell does, so
    a workload that exits 128+N by itself is reported the same way.)
    """

    def __init__(self, events: EventBus, containers: Mapping[str, Container]) -> None:
        self.events = events
        self.containers = containers
        self._sent: dict[str, set[int]] = {}  # signals our own kill sent, this run
        self._stopped: set[str] = set()  # stopped by someone else: `stop` after `die`
        self._dying: set[str] = set()  # exits being handled, their `die` not yet sent

    def started(self, c: Container) -> None:
        """C runs anew: nothing of its last run counts."""
        self._sent.pop(c.id, None)
        self._stopped.discard(c.id)

    def signalled(self, c: Container, number: int) -> None:
        """Our own kill sends NUMBER to C (it has its own `kill` event)."""
        self._sent.setdefault(c.id, set()).add(number)

    def exiting(self, c: Container) -> None:
        """C's monitor is gone; its `die` is on the way (a stop job seen meanwhile is
        still this run's: systemd announces it before it answers our next call)."""
        self._dying.add(c.id)

    def on_systemd_signal(self, s: Signal) -> None:
        """A signal of systemd's (bus.listen): a stop job starting on one of our scopes."""
        if (s.member != "PropertiesChanged" or not s.path.startswith(SCOPE_PATH_PREFIX)
                or not s.path.endswith(SCOPE_PATH_SUFFIX) or len(s.body) < 2
                or s.body[0] != UNIT_IFACE or not isinstance(s.body[1], dict)):
            return
        state = s.body[1].get("ActiveState")
        if not isinstance(state, Variant) or state.value != "deactivating":
            return
        for c in list(self.containers.values()):
            if ((c.running or c.id in self._dying) and not c.state.stop_requested
                    and c.id not in self._stopped and object_path(c.scope) == s.path):
                self._stopped.add(c.id)
                self.events.emit("container", "kill", c, signal=str(stop_signal(c)))

    def before_die(self, c: Container, known: bool) -> None:
        """Emit a `kill` for a signal death nobody here asked for (KNOWN: the monitor
        recorded the status; without it, 137 is our guess, not a signal seen)."""
        self._dying.discard(c.id)
        sent = self._sent.pop(c.id, set())
        number = c.state.exit_code - 128
        if (known and 0 < number <= MAX_SIGNAL and not c.state.oom_killed
                and not c.state.stop_requested and c.id not in self._stopped
                and number not in sent):
            self.events.emit("container", "kill", c, signal=str(number))

    def stopped_elsewhere(self, c: Container) -> bool:
        """Whether a stop job we did not ask for ended C's run (systemctl stop)."""
        return c.id in self._stopped

    def after_die(self, c: Container) -> None:
        """Emit `stop` if someone else's stop job ended C."""
        if c.id in self._stopped:
            self._stopped.discard(c.id)
            self.events.emit("container", "stop", c)

    def forget(self, c: Container) -> None:
        """C is removed."""
        self._sent.pop(c.id, None)
        self._stopped.discard(c.id)
        self._dying.discard(c.id)


def stop_signal(c: Container) -> int:
    """The signal C's scope stops with (its KillSignal): its StopSignal, or SIGTERM."""
    try:
        return parse_signal(c.config.stop_signal or "SIGTERM")
    except InvalidArgument:
        return int(signal.SIGTERM)
