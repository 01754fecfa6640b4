"""What the engine's helpers (exec sessions, healthchecks, restart policies, the hooks)
may ask of the engine, as a Protocol.

They type against this rather than `core.Engine`, which imports them: so the engine
depends on its helpers and never the other way round (no import cycle, even a
type-only one).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .events import EventBus
from .records import Container


class ProbeResult(Protocol):
    """The outcome of a command run in a container (`execs.ExecResult`)."""

    @property
    def exit_code(self) -> int: ...
    @property
    def output(self) -> bytes: ...
    @property
    def timed_out(self) -> bool: ...


class CommandRunner(Protocol):
    """Runs a command in a container to its end (`execs.ExecManager`)."""

    async def run(self, ref: str, argv: list[str],
                  timeout: float | None = None) -> ProbeResult:
        """Run ARGV in REF; past TIMEOUT seconds it is killed."""
        ...


class EngineAPI(Protocol):
    """The engine as its helpers see it (`core.Engine`)."""

    containers: dict[str, Container]
    events: EventBus

    @property
    def execs(self) -> CommandRunner: ...

    def get(self, ref: str) -> Container:
        """The container named REF, or whose id starts with REF."""
        ...

    def lock(self, c: Container) -> asyncio.Lock:
        """C's start/stop/remove lock."""
        ...

    async def save(self, c: Container) -> None:
        """Write C's record."""
        ...

    def save_soon(self, c: Container) -> None:
        """Write C's record in the background."""
        ...

    async def _start_locked(self, c: Container) -> None: ...

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        """Stop (if running), then start."""
        ...

    async def stop(self, ref: str, timeout: int | None = None) -> None:
        """Stop REF."""
        ...

    async def kill(self, ref: str, sig: str | int = "SIGKILL") -> None:
        """Send SIG to REF."""
        ...
