"""Authorising D-Bus calls: root, or polkit on the caller's bus name.

Every call that reveals or changes container data is authorised, reads
included: Inspect returns a container's environment (its secrets), so reading
follows the same rule as writing, as on the API socket.

The subject is the caller's unique bus name (system-bus-name), never its PID:
polkit resolves a name to its credentials through the bus, where a PID can be
recycled by another process between the call and the check (CVE-2021-3560 and
the older unix-process races).
"""

from __future__ import annotations

import logging

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio.message_bus import MessageBus

from ..errors import PermissionDenied

log = logging.getLogger(__name__)

MANAGE = "org.sdcontainer1.manage"    # create, start, stop, kill, remove, pull
INSPECT = "org.sdcontainer1.inspect"  # list, inspect, properties, introspection
ALLOW_USER_INTERACTION = 1


async def caller_uid(bus: MessageBus, sender: str) -> int:
    """The uid behind bus name SENDER, as the bus daemon knows it."""
    reply = await bus.call(Message(
        destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus", member="GetConnectionUnixUser", signature="s",
        body=[sender]))
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        raise PermissionDenied(f"cannot identify the caller {sender}")
    return int(reply.body[0])


async def authorize(bus: MessageBus, sender: str, interactive: bool,
                    action: str = MANAGE) -> None:
    """Return if SENDER may do ACTION (MANAGE or INSPECT), else raise PermissionDenied."""
    if await caller_uid(bus, sender) == 0:
        return
    subject = ["system-bus-name", {"name": Variant("s", sender)}]
    reply = await bus.call(Message(
        destination="org.freedesktop.PolicyKit1",
        path="/org/freedesktop/PolicyKit1/Authority",
        interface="org.freedesktop.PolicyKit1.Authority", member="CheckAuthorization",
        signature="(sa{sv})sa{ss}us",
        body=[subject, action, {}, ALLOW_USER_INTERACTION if interactive else 0, ""]))
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        why = reply.body[0] if reply is not None and reply.body else "no answer"
        log.warning("polkit could not check %s for %s: %s", action, sender, why)
        raise PermissionDenied(f"not authorized: polkit is unavailable ({why})")
    authorized, challenge, _ = reply.body[0]
    if not authorized:
        verb = "inspect" if action == INSPECT else "manage"
        raise PermissionDenied(f"not authorized to {verb} containers"
                               + (" (authentication required)" if challenge else ""))
