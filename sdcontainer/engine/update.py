"""Live changes to a container's resources and restart policy (`docker update`).

The new limits go onto the container's running scope with SetUnitProperties
(runtime=true: they last as long as the scope; the record carries them to the next
start), and into the record, so inspect shows them.  A restart policy change is read
by the restart rules at the container's next exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dbus_fast import Variant

from ..errors import InvalidArgument
from ..model.spec import RestartPolicy
from ..systemd import units
from ..systemd.bus import system_bus
from .records import Container

if TYPE_CHECKING:
    from .core import Engine

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
MIN_MEMORY = 6 * 1024 * 1024  # dockerd's floor: below it a container cannot start


@dataclass(frozen=True)
class ResourceUpdate:
    """What POST /containers/{id}/update asks; None leaves a setting as it is."""

    memory: int | None = None
    memory_swap: int | None = None
    nano_cpus: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    restart_name: str | None = None
    restart_retries: int | None = None


def _check(u: ResourceUpdate, c: Container) -> None:
    if u.memory is not None and 0 < u.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    memory = u.memory if u.memory is not None else c.config.memory
    if u.memory_swap is not None and u.memory_swap > 0 and memory and u.memory_swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if u.nano_cpus and (u.cpu_quota or u.cpu_period):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if u.cpu_quota is not None and 0 < u.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if u.cpu_period is not None and u.cpu_period and not 1000 <= u.cpu_period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) "
                              "or larger than 1s (i.e. 1000000)")
    if u.restart_name is not None and u.restart_name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{u.restart_name}'")
    if u.restart_name == "always" and c.config.auto_remove:
        raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled "
                              "for the container")


def apply_to_config(u: ResourceUpdate, c: Container) -> list[tuple[str, Variant]]:
    """Record U in C's config; the scope properties that carry the changes."""
    _check(u, c)
    cfg = c.config
    props: list[tuple[str, Variant]] = []
    if u.memory is not None:
        cfg.memory = u.memory
        props.append(("MemoryMax", Variant("t", u.memory or 2**64 - 1)))
    if u.memory_swap is not None:
        cfg.memory_swap = u.memory_swap
    if (u.memory is not None or u.memory_swap is not None) and cfg.memory_swap:
        props.append(("MemorySwapMax", Variant("t", units.swap_max(cfg.memory,
                                                                   cfg.memory_swap))))
    nano = u.nano_cpus
    if u.cpu_quota is not None or u.cpu_period is not None:
        period = u.cpu_period or 100_000
        nano = (u.cpu_quota or 0) * 1_000_000_000 // period if u.cpu_quota and u.cpu_quota > 0 \
            else 0
    if nano is not None:
        cfg.nano_cpus = nano
        props.append(("CPUQuotaPerSecUSec", Variant("t", nano // 1000 if nano else 2**64 - 1)))
    if u.cpu_shares is not None:
        cfg.cpu_shares = u.cpu_shares
        props.append(("CPUWeight", Variant("t", units.cpu_weight(u.cpu_shares) if u.cpu_shares
                                           else 2**64 - 1)))
    if u.pids_limit is not None:
        cfg.pids_limit = u.pids_limit if u.pids_limit > 0 else 0
        props.append(("TasksMax", Variant("t", cfg.pids_limit or 2**64 - 1)))
    if u.restart_name is not None:
        name = u.restart_name or "no"
        retries = u.restart_retries or 0 if name == "on-failure" else 0
        cfg.restart_policy = RestartPolicy(name, retries)
    return props


async def set_scope_properties(c: Container, props: list[tuple[str, Variant]]) -> None:
    """PROPS onto C's running scope, for this run only (the record has them for the next)."""
    if not props:
        return
    bus = await system_bus()
    scope = c.scope
    await bus.manager("SetUnitProperties", "sba(sv)", [scope, True, props],
                      what=f"cannot update {scope}")


async def update(engine: Engine, ref: str, u: ResourceUpdate) -> None:
    """Apply U to container REF: its running scope now, its record for later."""
    c = engine.get(ref)
    async with engine.lock(c):
        engine.still_here(c)
        props = apply_to_config(u, c)
        if c.running:
            await set_scope_properties(c, props)
        await engine.save(c)
    engine.events.emit("container", "update", c)
