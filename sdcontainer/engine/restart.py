"""Restart policies: docker's `no`, `on-failure[:N]`, `always` and `unless-stopped`.

For containers not run by a generated service (there systemd's own Restart=
applies).  The engine tells us when a container exits; we decide whether to
start it again, after docker's back-off: 100 ms, doubling on each restart, at
most a minute, back to 100 ms once a run lasted 10 s.  An explicit `stop`
(state.stop_requested) ends restarting, and so does the system shutting down:
the daemon then records the exit without fighting systemd.  At daemon start
(a daemon restart, or the host's boot), `always` containers, and
`unless-stopped` ones not explicitly stopped, are started again.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, SdcError
from ..model.spec import RestartPolicy
from ..systemd import units
from .records import Container

if TYPE_CHECKING:
    from .ports import EngineAPI

log = logging.getLogger(__name__)

POLICIES = ("no", "on-failure", "always", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0  # a run this long (seconds) resets the back-off


# The record's type: one representation of a policy, from the API to the record.
Policy = RestartPolicy


def parse(text: str) -> Policy:
    """`--restart` syntax: no | on-failure[:N] | always | unless-stopped."""
    name, _, count = text.partition(":")
    if name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy {text!r}: use no, on-failure[:N], "
                              "always or unless-stopped")
    if count and name != "on-failure":
        raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a "
                              "maximum retry count")
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise InvalidArgument(f"invalid restart policy {text!r}: bad retry count") from None
    if retries < 0:
        raise InvalidArgument(f"invalid restart policy {text!r}: negative retry count")
    return Policy(name, retries)


def from_json(data: Any) -> Policy:
    """HostConfig.RestartPolicy (docker's form, or a policy already typed), checked."""
    if isinstance(data, RestartPolicy):
        data = data.to_docker()
    if not data:
        return Policy()
    if not isinstance(data, dict):
        raise InvalidArgument("HostConfig.RestartPolicy must be an object")
    name = data.get("Name") or "no"
    retries = data.get("MaximumRetryCount") or 0
    if not isinstance(name, str) or name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy {name!r}: use no, on-failure, always "
                              "or unless-stopped")
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument(f"invalid MaximumRetryCount {retries!r}")
    if retries and name != "on-failure":
        raise InvalidArgument("maximum retry count cannot be used with restart policy "
                              f"'{name}'")
    return Policy(name, retries)


def policy_of(c: Container) -> Policy:
    """C's recorded policy."""
    try:
        return from_json(c.config.restart_policy)
    except InvalidArgument:
        return Policy()


def run_seconds(c: Container) -> float:
    """How long C's last run lasted."""
    try:
        start = datetime.datetime.fromisoformat(c.state.started_at.replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(c.state.finished_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (end - start).total_seconds()


def should_restart(policy: Policy, exit_code: int, stop_requested: bool,
                   restart_count: int) -> bool:
    """docker's RestartManager.ShouldRestart: whether an exit with EXIT_CODE, after
    RESTART_COUNT restarts, starts the container again under POLICY.  An explicit
    stop (STOP_REQUESTED) wins over every policy."""
    if policy.name == "no" or stop_requested:
        return False
    if policy.name in ("always", "unless-stopped"):
        return True
    return exit_code != 0 and (policy.max_retries == 0 or restart_count < policy.max_retries)


def next_delay(previous: float, last_run: float) -> float:
    """The back-off before the next restart, given the PREVIOUS delay (0 for none yet)
    and how long the last run lasted: FIRST_DELAY, doubling up to MAX_DELAY, back to
    FIRST_DELAY after a run of RESET_AFTER seconds or more (docker's rule)."""
    if previous == 0.0 or last_run >= RESET_AFTER:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


async def system_stopping() -> bool:
    """Whether the host is shutting down (systemd's SystemState), asked on the daemon's bus."""
    try:
        return await units.system_state() == "stopping"
    except SdcError:  # no answer: assume the system is running
        return False


class RestartManager:
    """Decides and performs restarts for one engine."""

    def __init__(self, engine: EngineAPI) -> None:
        self.engine = engine
        self.delays: dict[str, float] = {}
        self.counts: dict[str, int] = {}  # the truth; state.restart_count mirrors it
        self.pending: dict[str, asyncio.Task[None]] = {}
        # Restarts past their delay, starting: still "restarting" until they run.
        self.starting: set[str] = set()
        # Exits whose restart is decided but not yet scheduled (that runs off the exit
        # path): a removal racing it must already see the container as restarting.
        self.expected: set[str] = set()

    def restarting(self, c: Container) -> bool:
        """Whether C waits for a restart, or is being restarted (docker's State.Restarting)."""
        return c.id in self.pending or c.id in self.starting or c.id in self.expected

    def explicit_start(self, c: Container) -> None:
        """A user started C: counters and back-off start afresh."""
        self.cancel(c)
        self.delays.pop(c.id, None)
        self.counts[c.id] = 0
        c.state.restart_count = 0

    def count(self, c: Container) -> int:
        """C's restarts since its last explicit start (from its record after a daemon restart)."""
        return self.counts.setdefault(c.id, c.state.restart_count)

    def started(self, c: Container) -> None:
        """C's new state record carries its restart count."""
        c.state.restart_count = self.count(c)

    def cancel(self, c: Container) -> bool:
        """Drop a pending restart of C; whether there was one."""
        task = self.pending.pop(c.id, None)
        if task is None:
            return False
        task.cancel()
        return True

    def should_restart(self, c: Container, policy: Policy) -> bool:
        """docker's RestartManager.ShouldRestart, on C's recorded exit."""
        return should_restart(policy, c.state.exit_code, c.state.stop_requested,
                              c.state.restart_count)

    def expect(self, c: Container) -> None:
        """C has just exited: if its policy will restart it, it counts as restarting now."""
        if not c.config.auto_remove and should_restart(
                policy_of(c), c.state.exit_code, c.state.stop_requested, self.count(c)):
            self.expected.add(c.id)

    async def exited(self, c: Container) -> None:
        """C has exited and its record is saved: schedule a restart if the policy says so."""
        try:
            await self._exited(c)
        finally:
            self.expected.discard(c.id)

    async def _exited(self, c: Container) -> None:
        c.state.restart_count = self.count(c)
        policy = policy_of(c)
        if not self.should_restart(c, policy) or c.config.auto_remove:
            return
        if await system_stopping():
            log.info("not restarting %s: the system is shutting down", c.name)
            return
        delay = next_delay(self.delays.get(c.id, 0.0), run_seconds(c))
        self.delays[c.id] = delay
        self.schedule(c, delay, count=True)

    def schedule(self, c: Container, delay: float, count: bool) -> None:
        """Start C again after DELAY seconds."""
        self.cancel(c)
        log.info("restarting %s in %.1f s (policy %s)", c.name, delay, policy_of(c).name)
        self.pending[c.id] = asyncio.ensure_future(self._restart(c, delay, count))

    async def _restart(self, c: Container, delay: float, count: bool) -> None:
        await asyncio.sleep(delay)
        if self.pending.get(c.id) is asyncio.current_task():
            del self.pending[c.id]
        if c.id not in self.engine.containers or c.running or c.state.stop_requested:
            return
        if count:
            self.counts[c.id] = self.count(c) + 1
        self.starting.add(c.id)
        try:
            async with self.engine.lock(c):
                if c.running or c.id not in self.engine.containers:
                    return
                await self.engine._start_locked(c)
        except SdcError as e:
            log.warning("restarting %s failed: %s", c.name, e)
            if c.id in self.engine.containers:
                await self.exited(c)
            return
        finally:
            self.starting.discard(c.id)
        self.engine.events.emit("container", "restart", c)

    async def daemon_started(self) -> None:
        """At daemon start: bring back `always` and not-stopped `unless-stopped` containers."""
        for c in list(self.engine.containers.values()):
            if c.running or c.id in self.pending or c.state.status != "exited":
                continue
            policy = policy_of(c)
            if policy.name == "always" or (policy.name == "unless-stopped"
                                           and not c.state.stop_requested):
                log.info("starting %s at daemon start (restart policy %s)", c.name, policy.name)
                c.state.stop_requested = False
                self.schedule(c, 0.0, count=False)
