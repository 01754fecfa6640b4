"""Docker Engine API: container rename, prune and stats.

The engine renames, and reads the stats from the container's cgroup
(engine/stats.py); this module formats them as `docker stats` reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import AsyncIterator
from typing import Any

from ..engine import stats, views
from ..engine.core import Engine
from ..engine.records import Container
from ..engine.update import ResourceUpdate, update
from ..errors import InvalidArgument
from . import filters
from .http import Request, Response, Router, Stream, json_response


class ContainerOpsAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/containers/{id}/rename", self.rename)
        r.add("POST", "/containers/prune", self.prune)
        r.add("GET", "/containers/{id}/stats", self.stats)
        r.add("POST", "/containers/{id}/update", self.update)

    async def update(self, req: Request) -> Response:
        """docker update: resources and restart policy, applied to the running scope."""
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")

        def num(key: str, zero_is_unset: bool = True) -> int | None:
            # The docker CLI sends every field, 0 for those not given: as with dockerd,
            # 0 leaves a setting alone (PidsLimit, a pointer in docker's API, aside).
            value = body.get(key)
            if value is None:
                return None
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidArgument(f"{key} must be an integer")
            return None if value == 0 and zero_is_unset else value

        policy = body.get("RestartPolicy")
        if policy is not None and not isinstance(policy, dict):
            raise InvalidArgument("RestartPolicy must be an object")
        u = ResourceUpdate(
            memory=num("Memory"), memory_swap=num("MemorySwap"), nano_cpus=num("NanoCpus"),
            cpu_quota=num("CpuQuota"), cpu_period=num("CpuPeriod"), cpu_shares=num("CpuShares"),
            pids_limit=num("PidsLimit", zero_is_unset=False),
            restart_name=str(policy.get("Name") or "") if policy and policy.get("Name") else None,
            restart_retries=int(policy.get("MaximumRetryCount") or 0) if policy else None)
        await update(self.engine, req.params["id"], u)
        return json_response({"Warnings": None})

    async def rename(self, req: Request) -> Response:
        await self.engine.rename(req.params["id"], req.arg("name") or "")
        return Response(204)

    async def prune(self, req: Request) -> Response:
        f = filters.parse(req.arg("filters"), ("label", "label!", "until"))
        until = parse_until(f.get("until", []))
        deleted = []
        reclaimed = 0
        for c in list(self.engine.containers.values()):
            if c.running or (f.get("label") and not filters.labels_match(c.config.labels,
                                                                            f["label"])):
                continue
            if f.get("label!") and filters.labels_match(c.config.labels, f["label!"]):
                continue
            if until is not None and created_ts(c) >= until:
                continue
            # What it wrote is what its removal frees (a walk: in a thread).
            reclaimed += (await asyncio.to_thread(views.sizes, c, 0))["SizeRw"]
            await self.engine.remove(c.id)
            deleted.append(c.id)
        return json_response({"ContainersDeleted": deleted or None,
                              "SpaceReclaimed": reclaimed})

    async def stats(self, req: Request) -> Response | Stream:
        c = self.engine.get(req.params["id"])
        stream = req.flag("stream", True)
        one_shot = req.flag("one-shot", False)
        pre = await stats.sample_now(c)
        if not stream:
            if not one_shot and c.running:
                # As dockerd: two samples a second apart, so CPU % can be computed.
                await asyncio.sleep(1)
            now = await stats.sample_now(c) if c.running else pre
            return json_response(stats_json(c, now, pre if not one_shot else stats.empty_cpu()))

        async def chunks() -> AsyncIterator[bytes]:
            prev = stats.empty_cpu()
            while True:
                now = await stats.sample_now(c)
                yield json.dumps(stats_json(c, now, prev)).encode() + b"\n"
                prev = now
                if c.id not in self.engine.containers:
                    return
                await asyncio.sleep(1)

        return Stream(chunks())


def parse_until(values: list[str]) -> float | None:
    """The `until` filter: unix seconds or RFC 3339."""
    if not values:
        return None
    v = values[-1]
    with contextlib.suppress(ValueError):
        return float(v)
    try:
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidArgument(f"invalid until filter {v!r}") from None


def created_ts(c: Container) -> float:
    """C's creation time in unix seconds."""
    try:
        return datetime.datetime.fromisoformat(c.created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def stats_json(c: Container, now: stats.Sample, pre: stats.Sample) -> dict[str, Any]:
    """docker's stats object from two samples."""
    return {
        "read": now.read, "preread": pre.read, "id": c.id, "name": f"/{c.name}",
        "pids_stats": now.pids, "cpu_stats": now.cpu, "precpu_stats": pre.cpu,
        "memory_stats": now.memory, "num_procs": 0, "storage_stats": {},
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None},
        "networks": {},
    }
