"""Registration of running containers with systemd-machined (org.freedesktop.machine1).

A registered container shows in `machinectl list` and `machinectl status NAME`,
and `machinectl terminate/kill NAME` act on its scope (machined stops or
signals the unit that holds the leader).  We register with RegisterMachine,
not CreateMachine: the scope already exists, and machined finds it from the
leader's cgroup.  The leader is the workload's PID 1 as the host sees it.
machined forgets a machine when its unit goes; we also unregister explicitly.

Registration is a courtesy: a host without machined, or a container name
machined refuses (it must be a valid host name), only costs a log line.
"""

from __future__ import annotations

import logging

from ..errors import SdcError, SystemdError
from .bus import system_bus

log = logging.getLogger(__name__)

SERVICE = "sdcontainer"
MACHINED = "org.freedesktop.machine1"
MACHINED_PATH = "/org/freedesktop/machine1"
MACHINED_IFACE = "org.freedesktop.machine1.Manager"


def machine_id(container_id: str) -> bytes:
    """A 128-bit machine id from the container's id."""
    return bytes.fromhex(container_id[:32])


def machine_name(name: str) -> str:
    """The machine name of container NAME: machined wants a host name, so docker's
    generated names (adjective_scientist) get dashes for their underscores."""
    return name.replace("_", "-")


async def register(name: str, container_id: str, leader: int, root_directory: str) -> None:
    """Register container NAME, whose PID 1 is LEADER, as a machine of class container."""
    what = f"cannot register {name} with systemd-machined"
    if leader <= 1:
        # machined reads leader 0 as "the caller": it would register the daemon itself,
        # and stop sdcontainerd.service when it collects that machine.
        raise SystemdError(f"{what}: no leader process")
    bus = await system_bus()
    try:
        await bus.call(MACHINED, MACHINED_PATH, MACHINED_IFACE, "RegisterMachine", "sayssus",
                       [machine_name(name), machine_id(container_id), SERVICE, "container",
                        leader, root_directory], what=what)
    except SdcError as e:
        # Registration is a courtesy: whatever machined says, it is no error of the user's.
        raise SystemdError(str(e)) from e


async def unregister(name: str) -> None:
    """Forget machine NAME; no error if machined already did."""
    bus = await system_bus()
    try:
        await bus.call(MACHINED, MACHINED_PATH, MACHINED_IFACE, "UnregisterMachine", "s",
                       [machine_name(name)], what=f"cannot unregister {name}")
    except SdcError as e:
        log.debug("%s", e)


async def registered(name: str) -> bool:
    """Whether machined knows a machine NAME."""
    bus = await system_bus()
    try:
        await bus.call(MACHINED, MACHINED_PATH, MACHINED_IFACE, "GetMachine", "s",
                       [machine_name(name)], what=f"cannot look up {name}")
    except SdcError:
        return False
    return True
