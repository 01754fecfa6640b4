"""A container's network state as stored: state_dir/networks/endpoints/<id>.json.

It is written before any kernel object is made, so whatever a crash leaves
behind can be found from it and removed (detach and reconcile read it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import store
from .model import Attachment


@dataclass
class Endpoint:
    """The attachment plus what is needed to re-render the container's hosts file."""

    attachment: Attachment
    name: str
    hostname: str
    domainname: str = ""
    aliases: list[str] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    add_hosts: list[tuple[str, str]] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    owns_netns: bool = False

    @property
    def container_id(self) -> str:
        """The container's id."""
        return self.attachment.container_id

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "attachment": self.attachment.to_json(), "name": self.name,
            "hostname": self.hostname, "domainname": self.domainname,
            "aliases": self.aliases, "links": [list(x) for x in self.links],
            "add_hosts": [list(x) for x in self.add_hosts], "owns_netns": self.owns_netns,
            "dns": self.dns, "dns_search": self.dns_search, "dns_options": self.dns_options,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Endpoint:
        """Inverse of to_json."""
        return cls(
            attachment=Attachment.from_json(d["attachment"]), name=d["name"],
            hostname=d["hostname"], domainname=d.get("domainname", ""),
            aliases=list(d.get("aliases", [])),
            links=[(a, b, c) for a, b, c in d.get("links", [])],
            add_hosts=[(a, b) for a, b in d.get("add_hosts", [])],
            owns_netns=bool(d.get("owns_netns", False)),
            dns=list(d.get("dns", [])), dns_search=list(d.get("dns_search", [])),
            dns_options=list(d.get("dns_options", [])),
        )


class EndpointStore:
    """Endpoint records under DIRECTORY; the caller holds the state lock."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, container_id: str) -> Path:
        """Where CONTAINER_ID's record lives."""
        return self.dir / f"{container_id}.json"

    def get(self, container_id: str) -> Endpoint | None:
        """CONTAINER_ID's record, if any."""
        data = store.read_json(self.path(container_id))
        return Endpoint.from_json(data) if isinstance(data, dict) else None

    def put(self, ep: Endpoint) -> None:
        """Store EP durably."""
        store.write_json(self.path(ep.container_id), ep.to_json())

    def remove(self, container_id: str) -> None:
        """Forget CONTAINER_ID's record."""
        store.remove(self.path(container_id))

    def ids(self) -> list[str]:
        """Every container id with a record."""
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json"))
