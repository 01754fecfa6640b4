"""docker's `filters` query parameter for container lists and prunes.

Clients send it in two shapes: {"status": ["running"]} (current) and
{"status": {"running": true}} (docker 1.x and docker-py); both mean the same.
An unknown key is a 400, as dockerd answers, rather than a silently wider list.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from ..engine.records import Container
from ..errors import InvalidArgument

KNOWN = ("status", "name", "id", "label", "ancestor", "exited", "network", "before", "since")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse(raw: str | None, known: tuple[str, ...] = KNOWN) -> dict[str, list[str]]:
    """The filters argument as key -> values, checked against KNOWN."""
    if not raw:
        return {}
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid filters: {raw!r}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("filters must be a JSON object")
    result: dict[str, list[str]] = {}
    for key, value in data.items():
        if key not in known:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(value, dict):
            result[key] = [str(k) for k, on in value.items() if on]
        elif isinstance(value, list):
            result[key] = [str(v) for v in value]
        else:
            raise InvalidArgument(f"invalid filter value for '{key}'")
    return result


def wants_stopped(raw: str | None) -> bool:
    """Whether the filters name a state other than running (docker ps lists those then)."""
    f = parse(raw)
    return any(s != "running" for s in f.get("status", [])) or bool(f.get("exited"))


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """Every `key` or `key=value` of WANTED holds for LABELS."""
    for w in wanted:
        key, eq, value = w.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def container_filter(raw: str | None, engine: Any) -> Callable[[Container], bool]:
    """A predicate on containers for the filters in RAW."""
    f = parse(raw)
    for s in f.get("status", []):
        if s not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={s}'")
    try:
        name_res = [re.compile(n.lstrip("/")) for n in f.get("name", [])]
    except re.error as e:
        raise InvalidArgument(f"invalid name filter: {e}") from None
    exited = []
    for code in f.get("exited", []):
        if not code.lstrip("-").isdigit():
            raise InvalidArgument(f"invalid filter 'exited={code}'")
        exited.append(int(code))
    ancestors = f.get("ancestor", [])
    ancestor_ids = set()
    for a in ancestors:
        with contextlib.suppress(Exception):  # an unknown image simply matches nothing
            ancestor_ids.add(engine.images.resolve(a).id)
    before = [engine.get(b).created for b in f.get("before", [])]
    since = [engine.get(s).created for s in f.get("since", [])]

    def keep(c: Container) -> bool:
        shown = "paused" if c.running and c.state.paused else c.state.status
        if f.get("status") and shown not in f["status"]:
            return False
        if name_res and not any(r.search(c.name) for r in name_res):
            return False
        if f.get("id") and not any(c.id.startswith(i) for i in f["id"]):
            return False
        if f.get("label") and not labels_match(c.config.labels, f["label"]):
            return False
        if ancestors and c.config.image not in ancestors and \
                c.config.image_id not in ancestor_ids:
            return False
        if exited and (c.state.status != "exited" or c.state.exit_code not in exited):
            return False
        if f.get("network") and not set(f["network"]) & networks_of(c):
            return False
        if before and not all(c.created < b for b in before):
            return False
        return not since or all(c.created > s for s in since)

    return keep


def networks_of(c: Container) -> set[str]:
    """The names of the networks C is attached to (or its network mode)."""
    from ..engine.views import network_settings

    return {c.config.network_mode, *network_settings(c).get("Networks", {})}


EVENT_KEYS = ("container", "event", "type", "image", "label", "network", "volume", "daemon",
              "scope", "config", "node", "plugin", "secret", "service")


def event_filter(raw: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate on events for docker's event filters in RAW: values of one key are
    alternatives, keys must all hold."""
    f = parse(raw, EVENT_KEYS)

    def keep(e: dict[str, Any]) -> bool:
        actor = e.get("Actor") or {}
        attrs: dict[str, str] = actor.get("Attributes") or {}
        ident = str(actor.get("ID", e.get("id", "")))
        checks: dict[str, Callable[[str], bool]] = {
            "type": lambda v: e.get("Type") == v,
            "event": lambda v: e.get("Action") == v or e.get("Action", "").startswith(v + ":"),
            "scope": lambda v: e.get("scope", "local") == v,
            "image": lambda v: attrs.get("image") == v or e.get("from") == v,
            "label": lambda v: labels_match(attrs, [v]),
            "network": lambda v: (e.get("Type") == "network" and
                                   (ident.startswith(v) or attrs.get("name") == v))
            or attrs.get("network") == v,
        }
        for key, values in f.items():
            if key in ("container", "volume", "daemon", "config", "node", "plugin", "secret",
                       "service"):
                if e.get("Type") != key or not any(
                        attrs.get("name") == v or (v and ident.startswith(v)) for v in values):
                    return False
            elif not any(checks[key](v) for v in values):
                return False
        return True
    return keep


def event_time(raw: str | None) -> int | None:
    """docker's since/until of events (unix seconds, maybe with nanoseconds) in ns."""
    if not raw:
        return None
    seconds, _, frac = raw.partition(".")
    try:
        return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp {raw!r}") from None
