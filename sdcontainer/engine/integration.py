"""The engine's systemd-native extras, behind a few hooks in core.py.

Restart policies (restart.py), healthchecks (health.py) and registration with
systemd-machined (machined.py) each react to the same moments of a
container's life; the engine calls these hooks at those moments and knows
nothing more about them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, SdcError
from ..model.spec import ContainerConfig, Healthcheck
from ..systemd import machined
from . import health, restart
from .records import Container

if TYPE_CHECKING:
    from .ports import EngineAPI

log = logging.getLogger(__name__)


def configure(config: ContainerConfig, image_config: Any) -> None:
    """Check and complete CONFIG's restart policy and healthcheck (as the request gave
    them) with the image's."""
    policy = restart.from_json(config.restart_policy)
    if policy.name != "no" and config.auto_remove:
        raise InvalidArgument("conflicting options: cannot use a restart policy other than "
                              "'no' with --rm (AutoRemove)")
    config.restart_policy = policy
    asked = config.healthcheck.to_docker() if config.healthcheck else None
    merged = health.merge(getattr(image_config, "healthcheck", None), asked)
    config.healthcheck = Healthcheck.from_docker(merged) if merged else None
    if config.health_on_failure not in health.ACTIONS:
        raise InvalidArgument(f"invalid health-on-failure action {config.health_on_failure!r}: "
                              f"use {', '.join(health.ACTIONS)}")


class Hooks:
    """What happens besides the engine's own work at each step of a container's life."""

    def __init__(self, engine: EngineAPI) -> None:
        self.engine = engine
        self.restarts = restart.RestartManager(engine)
        self.health = health.HealthManager(engine)
        self._tasks: set[asyncio.Future[None]] = set()

    def explicit_start(self, c: Container) -> None:
        """A user (not a policy) starts C."""
        self.restarts.explicit_start(c)

    def stop_requested(self, c: Container) -> bool:
        """A user stops C; True if C was only waiting for a restart (now cancelled)."""
        if self.restarts.cancel(c):
            c.state.stop_requested = True
            self.engine.save_soon(c)
            return True
        return False

    async def started(self, c: Container) -> None:
        """C runs (its record is saved)."""
        self.restarts.started(c)
        if c.config.healthcheck or c.state.restart_count:
            await self.health.started(c)
            with contextlib.suppress(SdcError):
                await self.engine.save(c)
        self._background(self._register(c, c.state.pid))

    async def _register(self, c: Container, leader: int) -> None:
        if leader <= 1 or not c.running:
            return  # already over: machined would take leader 0 to mean us, the caller
        try:
            # No root directory: the rootfs is mounted only in the container's own mount
            # namespace (the host reaches it as /proc/LEADER/root, as machined does).
            await machined.register(c.name, c.id, leader, "")
        except SdcError as e:
            # A container that already ended (a short `run`) is no failure of ours.
            alive = c.running and os.path.exists(f"/proc/{c.state.pid}")
            log.log(logging.WARNING if alive else logging.DEBUG, "%s", e)

    async def exiting(self, c: Container) -> None:
        """C's workload is gone; its units are about to be released."""
        await self.health.exiting(c)

    async def exited(self, c: Container) -> None:
        """C's exit is recorded: restart it (or not) and unregister it, off the exit path."""
        async def after_exit() -> None:
            # Unregister first: a restart registers the same name again.
            await machined.unregister(c.name)
            await self.restarts.exited(c)

        self.restarts.expect(c)  # seen as restarting from now, not once scheduled
        self._background(after_exit())

    def _background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def daemon_started(self) -> None:
        """The daemon has reconciled its records."""
        await self.restarts.daemon_started()
