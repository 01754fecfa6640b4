"""Docker Engine API: the /volumes endpoints, and the volume parts of a create body
(named volumes in Binds and Mounts, Config.Volumes, HostConfig.VolumesFrom)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..engine.core import Engine
from ..engine.volumes import Volume, VolumeFilter
from ..errors import InvalidArgument
from ..model.spec import MountSpec
from . import filters
from .http import Request, Response, Router, json_response
from .wire import get, get_obj, get_str_list, get_str_map

LIST_FILTERS = ("name", "label", "dangling", "driver")
PRUNE_FILTERS = ("label", "label!", "all")


def parse_volume_bind(bind: str) -> MountSpec:
    """`NAME:/path[:ro|rw|nocopy,...]` of HostConfig.Binds."""
    parts = bind.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        raise InvalidArgument(f"invalid volume specification: {bind!r}")
    opts = parts[2].split(",") if len(parts) == 3 else []
    for o in opts:
        if o not in ("ro", "rw", "nocopy", "z", "Z"):
            raise InvalidArgument(f"invalid volume option {o!r} in {bind!r}")
    return MountSpec("volume", parts[1], name=parts[0], readonly="ro" in opts,
                     nocopy="nocopy" in opts, origin="binds",
                     mode=parts[2] if len(parts) == 3 else "")


def parse_volume_mount(m: dict[str, Any], target: str, readonly: bool) -> MountSpec:
    """A HostConfig.Mounts entry of Type volume (no Source: an anonymous volume)."""
    options = get_obj(m, "VolumeOptions", "Mounts.")
    driver = get_obj(options, "DriverConfig", "Mounts.VolumeOptions.")
    if get(driver, "Name", str, "", "Mounts.VolumeOptions.DriverConfig.") not in ("", "local"):
        raise InvalidArgument("volume drivers other than local are not supported")
    name = get(m, "Source", str, "", "Mounts.")
    subpath = volume_subpath(get(options, "Subpath", str, "", "Mounts.VolumeOptions."))
    if subpath and not name:
        raise InvalidArgument("Mounts.VolumeOptions.Subpath needs a named volume (Source)")
    # A subpath is a directory of a volume that already has content: nothing is copied up.
    return MountSpec("volume", target, name=name, readonly=readonly,
                     nocopy=bool(subpath) or get(options, "NoCopy", bool, False,
                                                 "Mounts.VolumeOptions."),
                     origin="mounts", subpath=subpath)


def volume_subpath(value: str) -> str:
    """VolumeOptions.Subpath, normalised: relative, and never leaving the volume by '..'."""
    if not value:
        return ""
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if value.startswith("/") or ".." in parts or "\0" in value:
        raise InvalidArgument(f"invalid volume subpath {value!r}: must be a relative path "
                              "inside the volume")
    return "/".join(parts)


def create_fields(body: dict[str, Any], hc: dict[str, Any], mounts: list[MountSpec]
                  ) -> dict[str, Any]:
    """Config.Volumes (anonymous volumes where nothing else mounts) and VolumesFrom."""
    taken = {m.target.rstrip("/") or "/" for m in mounts}
    anonymous = [MountSpec("volume", t) for t in sorted(get_obj(body, "Volumes"))
                 if (t.rstrip("/") or "/") not in taken]
    for m in anonymous:
        if not m.target.startswith("/"):
            raise InvalidArgument(f"invalid volume target {m.target!r}: must be an "
                                  "absolute path")
    return {"mounts": [*mounts, *anonymous],
            "volumes_from": get_str_list(hc, "VolumesFrom", "HostConfig.") or []}


def describe(engine: Engine, v: Volume) -> dict[str, Any]:
    """docker's Volume object."""
    return {"Name": v.name, "Driver": v.driver, "Mountpoint": str(engine.volumes.mountpoint(v)),
            "CreatedAt": v.created_at, "Labels": v.labels or None, "Scope": "local",
            "Options": v.options or None}


class VolumeAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("GET", "/volumes", self.list)
        r.add("POST", "/volumes/create", self.create)
        r.add("POST", "/volumes/prune", self.prune)
        r.add("GET", "/volumes/{name}", self.inspect)
        r.add("DELETE", "/volumes/{name}", self.remove)

    async def list(self, req: Request) -> Response:
        f = filters.parse(req.arg("filters"), LIST_FILTERS)
        dangling = None
        for value in f.get("dangling", []):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            dangling = value.lower() in ("true", "1")
        chosen = VolumeFilter(names=tuple(f.get("name", [])), labels=tuple(f.get("label", [])),
                              drivers=tuple(f.get("driver", [])), dangling=dangling)
        found = await asyncio.to_thread(self.engine.volumes.select, chosen,
                                        list(self.engine.containers.values()))
        return json_response({"Volumes": [describe(self.engine, v) for v in found],
                              "Warnings": None})

    async def create(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        name = get(body, "Name", str, "") or None
        # As dockerd: a volume created without a name is anonymous, so a prune (which
        # spares named volumes since API 1.42) removes it once no container uses it.
        v = await asyncio.to_thread(
            self.engine.volumes.create, name,
            get(body, "Driver", str, "local") or "local", get_str_map(body, "Labels"),
            get_str_map(body, "DriverOpts"), anonymous=name is None)
        return json_response(describe(self.engine, v), 201)

    async def inspect(self, req: Request) -> Response:
        v = await asyncio.to_thread(self.engine.volumes.get, req.params["name"])
        return json_response(describe(self.engine, v))

    async def remove(self, req: Request) -> Response:
        await asyncio.to_thread(self.engine.volumes.remove, req.params["name"],
                                list(self.engine.containers.values()), req.flag("force"))
        return Response(204)

    async def prune(self, req: Request) -> Response:
        f = filters.parse(req.arg("filters"), PRUNE_FILTERS)
        labels = [*f.get("label", []), *("!" + w for w in f.get("label!", []))]
        every = f.get("all", [])
        for value in every:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'all={value}'")
        # Since API 1.42 docker prunes only anonymous volumes unless all=true: named
        # volumes hold data people meant to keep.  Older clients get the old rule.
        named_too = (any(v.lower() in ("true", "1") for v in every) if every
                     else req.api_version is not None and req.api_version < (1, 42))
        gone, reclaimed = await asyncio.to_thread(
            self.engine.volumes.prune, list(self.engine.containers.values()), labels,
            named_too)
        return json_response({"VolumesDeleted": gone, "SpaceReclaimed": reclaimed})
