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
import threading

from pystemd.dbusexc import DBusBaseError as DBusError
from pystemd.machine1 import Manager

from ..errors import SystemdError
from .units import thread_bus

log = logging.getLogger(__name__)

SERVICE = "sdcontainer"
_local = threading.local()


def _manager() -> Manager:
    manager: Manager | None = getattr(_local, "manager", None)
    if manager is None:
        manager = Manager(bus=thread_bus(), _autoload=True)
        _local.manager = manager
    return manager


def machine_id(container_id: str) -> bytes:
    """A 128-bit machine id from the container's id."""
    return bytes.fromhex(container_id[:32])


def machine_name(name: str) -> str:
    """The machine name of container NAME: machined wants a host name, so docker's
    generated names (adjective_scientist) get dashes for their underscores."""
    return name.replace("_", "-")


def register(name: str, container_id: str, leader: int, root_directory: str) -> None:
    """Register container NAME, whose PID 1 is LEADER, as a machine of class container."""
    if leader <= 1:
        # machined reads leader 0 as "the caller": it would register the daemon itself,
        # and stop sdcontainerd.service when it collects that machine.
        raise SystemdError(f"cannot register {name} with systemd-machined: no leader process")
    try:
        _manager().Manager.RegisterMachine(
            machine_name(name).encode(), machine_id(container_id), SERVICE.encode(),
            b"container", leader, root_directory.encode())
    except DBusError as e:
        raise SystemdError(f"cannot register {name} with systemd-machined: {e}") from e


def unregister(name: str) -> None:
    """Forget machine NAME; no error if machined already did."""
    try:
        _manager().Manager.UnregisterMachine(machine_name(name).encode())
    except DBusError as e:
        log.debug("unregistering %s: %s", name, e)


def registered(name: str) -> bool:
    """Whether machined knows a machine NAME."""
    try:
        _manager().Manager.GetMachine(machine_name(name).encode())
    except DBusError:
        return False
    return True
