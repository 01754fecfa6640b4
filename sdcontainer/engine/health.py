"""Healthchecks, driven by systemd: a transient timer and service per container.

When a container with a healthcheck (the image's HEALTHCHECK or `--health-*`)
starts, we create `sdcontainer-healthcheck@NAME.timer` with its service as an
auxiliary unit, in one StartTransientUnit call.  The service runs in the
container's slice and runs `sdcontainer healthcheck run NAME`, which asks the
daemon to probe: the daemon execs the test through the container's monitor
(as `exec` does), with the timeout, and folds the result into State.Health
(docker's rules: FailingStreak, Retries, StartPeriod, the last five results).
A change of status is an event (`health_status: healthy`); turning unhealthy
triggers `--health-on-failure` (none, restart, kill, stop: podman's).

The timer is BindsTo= the container's scope, so it stops with it, whoever
stops the container; we stop it too when we see the exit, before the
container's slice is released, so no probe starts in a slice being removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, InvalidArgument, SdcError
from ..systemd import units
from ..util.clock import now, unix_time
from .records import Container

if TYPE_CHECKING:
    from .ports import EngineAPI

log = logging.getLogger(__name__)

SECOND = 1_000_000_000  # docker's durations are nanoseconds
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "Retries": 3, "StartPeriod": 0}
ACTIONS = ("none", "restart", "kill", "stop")
MAX_LOG = 5
MAX_OUTPUT = 4096


def normalize(hc: Any) -> dict[str, Any]:
    """docker's Config.Healthcheck, checked, defaults filled in; {} if there is no check."""
    if not hc:
        return {}
    if not isinstance(hc, dict):
        raise InvalidArgument("Healthcheck must be an object")
    test = hc.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise InvalidArgument("Healthcheck.Test must be a list of strings")
    if not test or test[0] == "NONE":
        return {}
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise InvalidArgument(f"invalid Healthcheck.Test {test!r}: use [\"CMD\", ...] or "
                              "[\"CMD-SHELL\", \"command\"]")
    out: dict[str, Any] = {"Test": test}
    for key, default in DEFAULTS.items():
        value = hc.get(key) or 0
        if not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"invalid Healthcheck.{key} {value!r}")
        if key != "Retries" and 0 < value < 1_000_000:
            raise InvalidArgument(f"Healthcheck.{key} must be at least 1ms")
        out[key] = value or default
    return out


def merge(image_hc: Any, request_hc: Any) -> dict[str, Any]:
    """The request's healthcheck over the image's, field by field, as docker merges them."""
    if isinstance(request_hc, dict) and request_hc.get("Test") == ["NONE"]:
        return {}
    base = dict(image_hc) if isinstance(image_hc, dict) else {}
    if isinstance(request_hc, dict):
        base.update({k: v for k, v in request_hc.items() if v})
    return normalize(base)


def argv_of(test: list[str]) -> list[str]:
    """The command a test runs."""
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]


def timer_unit(name: str) -> str:
    """The healthcheck timer of container NAME ('@' cannot clash with a container name)."""
    return f"sdcontainer-healthcheck@{name}.timer"


def service_unit(name: str) -> str:
    """The healthcheck service of container NAME."""
    return f"sdcontainer-healthcheck@{name}.service"


def cli_path() -> str:
    """The sdcontainer command beside our interpreter (a venv or /usr/bin)."""
    found = shutil.which("sdcontainer", path=os.path.dirname(sys.executable))
    return found or "/usr/bin/sdcontainer"


async def start_units(c: Container) -> None:
    """Create C's timer and its service; return once the timer is started."""
    hc = c.config.healthcheck
    if hc is None:
        return
    interval_us = hc.interval // 1000
    timeout_s = hc.timeout // SECOND + 1
    timer, service = timer_unit(c.name), service_unit(c.name)
    for u in (timer, service):
        if await units.active_state(u) in ("active", "activating", "deactivating"):
            with contextlib.suppress(SdcError):
                await units.stop(u)
            await units.wait_gone(u, 5)
        await units.reset_failed(u)
    cli = cli_path()
    timer_props: units.Properties = [
        units.prop("Description", "s", f"healthcheck timer of sdcontainer {c.name}"),
        units.prop("OnActiveSec", "t", interval_us),
        units.prop("OnUnitActiveSec", "t", interval_us),
        units.prop("AccuracyUSec", "t", 1000), units.prop("RemainAfterElapse", "b", False),
        units.prop("BindsTo", "as", [c.scope]), units.prop("After", "as", [c.scope]),
        units.prop("CollectMode", "s", "inactive-or-failed"),
    ]
    service_props: units.Properties = [
        units.prop("Description", "s", f"healthcheck of sdcontainer {c.name}"),
        units.prop("Type", "s", "oneshot"),
        # Beside the scope: a CgroupParent slice is not ours, and ours is not made then.
        units.prop("Slice", "s", units.slice_for(c.name, c.config.cgroup_parent)),
        units.prop("ExecStart", "a(sasb)", [[cli, [cli, "healthcheck", "run", c.id], False]]),
        units.prop("TimeoutStartUSec", "t", (timeout_s + 30) * 1_000_000),
        units.prop("CollectMode", "s", "inactive-or-failed"),
        units.prop("SyslogIdentifier", "s", "sdcontainer-healthcheck"),
    ]
    await units.start_transient(timer, "replace", timer_props, [(service, service_props)])


async def stop_units(name: str) -> None:
    """Stop NAME's timer (and a probe in flight); no error if they are gone."""
    for u in (timer_unit(name), service_unit(name)):
        if await units.active_state(u) != "inactive":
            with contextlib.suppress(SdcError):
                await units.stop(u)
        await units.reset_failed(u)



def fold(health: dict[str, Any] | None, hc: dict[str, Any], result: dict[str, Any],
         running_for: float) -> dict[str, Any]:
    """State.Health after one probe RESULT, by docker's rules; HEALTH is not changed.

    A pass makes the container healthy and ends the failing streak; a failure adds to
    the streak and, at Retries failures in a row, makes it unhealthy.  A failure while
    the container is still 'starting' and has run (RUNNING_FOR seconds) less than
    StartPeriod does not count.  The log keeps the last MAX_LOG results."""
    old: dict[str, Any] = (dict(health) if health
                           else {"Status": "starting", "FailingStreak": 0, "Log": []})
    new: dict[str, Any] = {**old, "Log": [*old.get("Log", []), result][-MAX_LOG:]}
    if result["ExitCode"] == 0:
        new["Status"], new["FailingStreak"] = "healthy", 0
    elif not (old.get("Status", "starting") == "starting"
              and running_for < int(hc["StartPeriod"]) / SECOND):
        new["FailingStreak"] = int(old.get("FailingStreak", 0)) + 1
        if new["FailingStreak"] >= int(hc["Retries"]):
            new["Status"] = "unhealthy"
    return new


class HealthManager:
    """Probes, status and actions for one engine."""

    def __init__(self, engine: EngineAPI) -> None:
        self.engine = engine
        self._tasks: set[asyncio.Future[None]] = set()
        self._probing: dict[str, asyncio.Lock] = {}

    async def started(self, c: Container) -> None:
        """C started: its health starts as 'starting' and its timer runs."""
        if not c.config.healthcheck:
            return
        c.state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        try:
            await start_units(c)
        except SdcError as e:
            log.error("%s", e)

    async def exiting(self, c: Container) -> None:
        """C's workload is gone: stop its timer before its slice is released."""
        if c.config.healthcheck:
            await stop_units(c.unit_base)  # named when it started (a rename since keeps them)

    async def probe(self, ref: str) -> dict[str, Any]:
        """Run C's test once and fold the result in; the new State.Health."""
        c = self.engine.get(ref)
        hc = c.config.healthcheck
        if not hc:
            raise Conflict(f"container {c.name} has no healthcheck defined")
        if not c.running:
            raise Conflict(f"container {c.name} is not running")
        async with self._probing.setdefault(c.id, asyncio.Lock()):
            started = now()
            code, output = await self._run(c, argv_of(hc.test), hc.timeout / SECOND)
            if c.running:
                self._record(c, {"Start": started, "End": now(), "ExitCode": code,
                                 "Output": output})
        return dict(c.state.health)

    async def _run(self, c: Container, argv: list[str], timeout: float) -> tuple[int, str]:
        """One probe, an exec session of the engine's; past TIMEOUT, tini and the test
        under it are killed (execs.run)."""
        try:
            result = await self.engine.execs.run(c.id, argv, timeout)
        except SdcError as e:
            return -1, str(e)
        if result.timed_out:
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        return result.exit_code, result.output.decode(errors="replace")[:MAX_OUTPUT]

    def _record(self, c: Container, result: dict[str, Any]) -> None:
        old = (c.state.health or {}).get("Status", "starting")
        hc = c.config.healthcheck
        health = fold(c.state.health, hc.to_docker() if hc else DEFAULTS, result,
                      time.time() - unix_time(c.state.started_at))
        c.state.health = health
        self.engine.save_soon(c)
        if health["Status"] != old:
            self.engine.events.emit("container", f"health_status: {health['Status']}", c)
            if health["Status"] == "unhealthy" and c.config.health_on_failure != "none":
                task = asyncio.ensure_future(self._act(c, c.config.health_on_failure))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _act(self, c: Container, action: str) -> None:
        log.info("container %s is unhealthy: %s", c.name, action)
        try:
            if action == "restart":
                await self.engine.restart(c.id)
            elif action == "kill":
                await self.engine.kill(c.id, "SIGKILL")
            elif action == "stop":
                await self.engine.stop(c.id)
        except SdcError as e:
            log.warning("health action %s on %s failed: %s", action, c.name, e)
