"""Docker Engine API: POST /build (the classic builder), POST /commit, and a
container's /changes and /export."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, BinaryIO, cast

from ..engine import build as engine_build
from ..engine import commit as engine_commit
from ..engine.core import Engine
from ..errors import InvalidArgument, SdcError, Unsupported
from ..images.build.builder import BuildFailed, BuildOptions
from .http import Request, Response, Router, Stream, json_response
from .images import spool

log = logging.getLogger(__name__)


def _json_arg(req: Request, name: str, kind: type) -> Any:
    raw = req.arg(name)
    if not raw:
        return kind()
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {name}: not JSON: {raw!r}") from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise InvalidArgument(f"invalid {name}: want a JSON {kind.__name__}")
    return value


def build_options(req: Request) -> BuildOptions:
    """POST /build's query as BuildOptions; InvalidArgument names a bad parameter."""
    if req.arg("remote"):
        raise Unsupported("remote build contexts (remote=...) are not supported: send the "
                          "context as a tar body")
    args = _json_arg(req, "buildargs", dict)
    labels = _json_arg(req, "labels", dict)
    for what, d in (("buildargs", args), ("labels", labels)):
        if not all(isinstance(v, str) or v is None for v in d.values()):
            raise InvalidArgument(f"invalid {what}: values must be strings")
    cache_from = _json_arg(req, "cachefrom", list)
    hosts = [h for v in req.query.get("extrahosts", []) for h in v.split(",") if h]
    quota, period = req.int_arg("cpuquota", 0) or 0, req.int_arg("cpuperiod", 0) or 100_000
    memory = req.int_arg("memory", 0) or 0
    if memory < 0 or quota < 0:
        raise InvalidArgument("memory and cpuquota must not be negative")
    return BuildOptions(
        # The first value, as dockerd reads it: docker-py sends an out-of-context
        # Dockerfile as two values, its name in the context and then its text.
        dockerfile=(req.query.get("dockerfile") or [""])[0] or "Dockerfile",
        tags=[t for t in req.query.get("t", []) if t],
        build_args={k: v for k, v in args.items() if v is not None},
        target=req.arg("target") or "", no_cache=req.flag("nocache"), pull=req.flag("pull"),
        remove=req.flag("rm", True), force_remove=req.flag("forcerm"), labels=labels,
        cache_from=[str(c) for c in cache_from],
        network_mode="" if (req.arg("networkmode") or "default") == "default"
        else req.arg("networkmode") or "",
        extra_hosts=hosts, shm_size=req.int_arg("shmsize", 0) or 0, memory=memory,
        nano_cpus=quota * 1_000_000_000 // period if quota else 0,
        platform=req.arg("platform") or "")


class BuildAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/build", self.build, stream_body=True)
        r.add("POST", "/build/prune", self.prune)
        r.add("POST", "/commit", self.commit)
        r.add("GET", "/containers/{id}/changes", self.changes)
        r.add("GET", "/containers/{id}/export", self.export)

    async def build(self, req: Request) -> Stream:
        opts = build_options(req)
        quiet = req.flag("q")
        f = await spool(req, self.engine.images.limits.max_bytes)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def emit(msg: dict[str, Any]) -> None:
            if quiet and "stream" in msg:
                return
            queue.put_nowait(msg)

        async def work() -> None:
            try:
                img = await engine_build.build(self.engine, cast(BinaryIO, f), opts, emit)
                if quiet:
                    queue.put_nowait({"stream": img.id + "\n"})
            except SdcError as e:
                code = e.code if isinstance(e, BuildFailed) else 1
                queue.put_nowait({"errorDetail": {"code": code, "message": str(e)},
                                  "error": str(e)})
            except Exception as e:  # the stream must say why it ended
                log.exception("build failed")
                msg = f"build failed: {e}"
                queue.put_nowait({"errorDetail": {"message": msg}, "error": msg})
            finally:
                f.close()
                queue.put_nowait(None)

        task = asyncio.ensure_future(work())

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while (msg := await queue.get()) is not None:
                    yield json.dumps(msg).encode() + b"\r\n"
            finally:
                if not task.done():
                    # The client went away: stop the build, its cleanup runs.
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        return Stream(chunks())

    async def prune(self, req: Request) -> Response:
        done = await engine_build.prune(self.engine, req.flag("all"))
        return json_response({"CachesDeleted": done.deleted or None,
                              "SpaceReclaimed": done.reclaimed})

    async def commit(self, req: Request) -> Response:
        container = req.arg("container")
        if not container:
            raise InvalidArgument("commit needs container=NAME")
        changes = [c for v in req.query.get("changes", []) for c in v.split("\n") if c.strip()]
        image = await engine_commit.commit(self.engine, engine_commit.CommitRequest(
            container=container, repo=req.arg("repo") or "", tag=req.arg("tag") or "",
            comment=req.arg("comment") or "", author=req.arg("author") or "",
            pause=req.flag("pause", True), changes=changes))
        return json_response({"Id": image.id}, 201)

    async def changes(self, req: Request) -> Response:
        found = await engine_commit.container_changes(self.engine, req.params["id"])
        return json_response([{"Path": c.path, "Kind": c.kind} for c in found])

    async def export(self, req: Request) -> Stream:
        chunks = await engine_commit.export(self.engine, req.params["id"])
        return Stream(chunks, "application/x-tar")
