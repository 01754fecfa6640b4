"""docker's predefined networks besides `bridge`: `host` and `none`.

They are network modes, not networks we make: dockerd lists and inspects them (with
drivers `host` and `null`, no IPAM, and the containers in that mode), and refuses to
remove, prune or connect them.  Tools that walk `docker network ls` expect the three.
"""

from __future__ import annotations

import hashlib

from .model import NetworkRecord

DRIVERS = {"host": "host", "none": "null"}


def network_id(name: str) -> str:
    """A stable id for predefined network NAME (the same on every start)."""
    return hashlib.sha256(f"sdcontainer predefined network {name}".encode()).hexdigest()


def records(created: str) -> list[NetworkRecord]:
    """`host` and `none` as network records, CREATED as the default bridge's."""
    return [NetworkRecord(name=name, id=network_id(name), bridge="", subnet="", gateway="",
                          created=created, driver=driver) for name, driver in DRIVERS.items()]


def find(ref: str) -> str | None:
    """The predefined network REF names (its name, its id or an id prefix of at least
    three characters), or None."""
    for name in DRIVERS:
        if ref == name or (len(ref) >= 3 and network_id(name).startswith(ref)):
            return name
    return None
