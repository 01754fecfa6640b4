"""Docker Engine API: the /images endpoints, over the image store."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from typing import Any, BinaryIO, cast

from .. import paths
from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, NoSuchImage, SdcError
from ..images.archive import load, save
from ..images.model import Image
from ..images.pull import pull
from ..util.clock import unix_time
from .containers import refuse_control_chars
from .http import MAX_BODY, Request, Response, Router, Stream, body_chunks, json_response

log = logging.getLogger(__name__)


def summary(img: Image) -> dict[str, Any]:
    """An image as GET /images/json lists it."""
    return {
        "Id": img.id, "ParentId": "", "RepoTags": img.repo_tags or ["<none>:<none>"],
        "RepoDigests": img.repo_digests, "Created": unix_time(img.created), "Size": img.size,
        "VirtualSize": img.size, "SharedSize": -1, "Labels": img.config.labels or {},
        "Containers": -1,
    }


def inspect(img: Image) -> dict[str, Any]:
    """An image as GET /images/{name}/json shows it."""
    cfg = img.config
    return {
        "Id": img.id, "RepoTags": img.repo_tags, "RepoDigests": img.repo_digests, "Parent": "",
        "Comment": "", "Created": img.created, "Container": "", "DockerVersion": "",
        "Author": str(img.raw_config.get("author", "")),
        "Config": {
            "Entrypoint": cfg.entrypoint, "Cmd": cfg.cmd, "Env": cfg.env,
            "WorkingDir": cfg.working_dir, "User": cfg.user, "StopSignal": cfg.stop_signal,
            "ExposedPorts": {p: {} for p in cfg.exposed_ports} or None, "Labels": cfg.labels,
            "Healthcheck": cfg.healthcheck,
        },
        "Architecture": img.architecture, "Os": img.os, "Size": img.size,
        "VirtualSize": img.size,
        "RootFS": {"Type": "layers",
                   "Layers": img.raw_config.get("rootfs", {}).get("diff_ids", [])},
        "GraphDriver": {"Name": "overlay",
                        "Data": {"LowerDir": ":".join(str(p) for p in reversed(img.layers))}},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


async def spool(req: Request, limit: int) -> tempfile._TemporaryFileWrapper[bytes]:
    """The request body in an unlinked temporary file beside the store (uploads can be large).

    It goes to disk piece by piece, never whole in memory; LIMIT (the store's cap on
    an archive) replaces the HTTP server's MAX_BODY, which is for bodies held in memory."""
    paths.IMAGES_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    f = tempfile.NamedTemporaryFile(dir=paths.IMAGES_DIR, prefix=".upload-")  # noqa: SIM115
    try:
        async for chunk in body_chunks(req.reader, req.headers, limit):
            await asyncio.to_thread(f.write, chunk)
        f.flush()
    except BaseException:
        f.close()
        raise
    f.seek(0)
    return f


def _change_args(line: str, rest: str) -> list[str]:
    """A CMD/ENTRYPOINT value: JSON form, or shell form."""
    if not rest.startswith("["):
        return ["/bin/sh", "-c", rest]
    try:
        value = json.loads(rest)
    except ValueError:
        raise InvalidArgument(f"invalid --change value: {line}") from None
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid --change value: {line}")
    return [str(v) for v in value]


def parse_changes(values: list[str]) -> dict[str, Any]:
    """`docker import --change` Dockerfile lines (CMD, ENTRYPOINT, ENV, WORKDIR, ...)."""
    config: dict[str, Any] = {}
    for line in values:
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        word = word.upper()
        if word == "CMD":
            config["Cmd"] = _change_args(line, rest)
        elif word == "ENTRYPOINT":
            config["Entrypoint"] = _change_args(line, rest)
        elif word == "ENV":
            key, sep, value = rest.partition("=")
            if not sep:
                key, _, value = rest.partition(" ")
            config.setdefault("Env", []).append(f"{key}={value.strip()}")
        elif word == "WORKDIR":
            config["WorkingDir"] = rest
        elif word == "USER":
            config["User"] = rest
        elif word == "STOPSIGNAL":
            config["StopSignal"] = rest
        elif word == "LABEL":
            key, _, value = rest.partition("=")
            config.setdefault("Labels", {})[key] = value.strip('"')
        elif word == "EXPOSE":
            for p in rest.split():
                config.setdefault("ExposedPorts", {})[p if "/" in p else f"{p}/tcp"] = {}
        else:
            raise InvalidArgument(f"{word} is not a valid change command")
    return config


class ImageAPI:
    """Handlers bound to an engine (which holds the store)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.images

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/images/create", self.create, stream_body=True)
        r.add("GET", "/images/json", self.list)
        r.add("POST", "/images/load", self.load, stream_body=True)
        r.add("GET", "/images/get", self.save_many)
        r.add("POST", "/images/prune", self.prune)
        r.add("GET", "/images/{name*}/json", self.inspect)
        r.add("GET", "/images/{name*}/get", self.save_one)
        r.add("POST", "/images/{name*}/tag", self.tag)
        r.add("DELETE", "/images/{name*}", self.remove)
        r.add("POST", "/auth", self.login)
        r.add("DELETE", "/auth/{registry}", self.logout)  # ours: docker logs out client-side

    async def create(self, req: Request) -> Stream:
        src, image = req.arg("fromSrc"), req.arg("fromImage")
        repo, tag = req.arg("repo") or "", req.arg("tag") or ""
        if src is not None:
            if src != "-":
                raise InvalidArgument("import from a URL is not supported; send the tarball")
            f = await spool(req, self.store.limits.max_bytes)
            ref = f"{repo}:{tag}" if repo and tag else repo or None
            changes = parse_changes(req.query.get("changes", []))
            try:
                img = await asyncio.to_thread(self.store.import_rootfs, f, ref, changes)
            finally:
                f.close()
            return Stream(_once({"status": img.id}))
        if not image:
            raise InvalidArgument("fromImage or fromSrc is required")
        async for _ in body_chunks(req.reader, req.headers, MAX_BODY):
            pass
        ref = image if not tag or "@" in image else f"{image}:{tag}"
        return Stream(self._pull(ref, req.arg("platform") or None))

    async def _pull(self, ref: str, platform: str | None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def progress(p: Any) -> None:
            msg: dict[str, Any] = {"status": p.status, "id": p.id}
            if p.total:
                msg["progressDetail"] = {"current": p.current, "total": p.total}
            loop.call_soon_threadsafe(queue.put_nowait, msg)

        def work() -> None:
            try:
                img = pull(self.store, ref, platform=platform, progress=progress)
                digest = img.repo_digests[0].split("@", 1)[1] if img.repo_digests else img.id
                loop.call_soon_threadsafe(queue.put_nowait, {"status": f"Digest: {digest}"})
                loop.call_soon_threadsafe(queue.put_nowait,
                                          {"status": f"Status: Downloaded image for {ref}"})
            except Exception as e:  # a pull thread must never end without saying why
                if not isinstance(e, SdcError):
                    log.exception("pull of %s failed", ref)
                message = str(e) if isinstance(e, SdcError) else f"pull failed: {e}"
                loop.call_soon_threadsafe(queue.put_nowait,
                                          {"error": message, "errorDetail": {"message": message}})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=work, daemon=True).start()
        while (msg := await queue.get()) is not None:
            yield json.dumps(msg).encode() + b"\r\n"

    async def login(self, req: Request) -> Response:
        """docker's POST /auth: check the credentials with the registry, then keep them."""
        from ..images import auth

        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        server = str(body.get("serveraddress") or "docker.io")
        server = server.removeprefix("https://").removeprefix("http://").split("/")[0]
        await asyncio.to_thread(auth.login, server, str(body.get("username") or ""),
                                str(body.get("password") or ""), config=self.store.config)
        return json_response({"Status": "Login Succeeded", "IdentityToken": ""})

    async def logout(self, req: Request) -> Response:
        """Forget a registry's credentials."""
        from ..images import auth

        if not await asyncio.to_thread(auth.logout, req.params["registry"]):
            raise NoSuchImage(f"not logged in to {req.params['registry']}")
        return Response(204)

    async def list(self, req: Request) -> Response:
        images = await asyncio.to_thread(self.store.list)
        return json_response([summary(i) for i in images])

    async def inspect(self, req: Request) -> Response:
        refuse_control_chars(req.params["name"])
        try:
            img = await asyncio.to_thread(self.store.resolve, req.params["name"])
        except NoSuchImage:
            # docker's exact words: docker-py tells ImageNotFound by them.
            raise NoSuchImage(f"No such image: {req.params['name']}") from None
        return json_response(inspect(img))

    async def tag(self, req: Request) -> Response:
        repo = req.arg("repo") or ""
        if not repo:
            raise InvalidArgument("repository name is required")
        new = f"{repo}:{req.arg('tag')}" if req.arg("tag") else repo
        await asyncio.to_thread(self.store.tag, req.params["name"], new)
        return Response(201)

    def _in_use(self) -> dict[str, str]:
        return {c.config.image_id: c.name for c in self.engine.containers.values()}

    async def remove(self, req: Request) -> Response:
        img = await asyncio.to_thread(self.store.resolve, req.params["name"])
        user = self._in_use().get(img.id)
        force = req.flag("force")
        # Removing one of several tags only untags: the image itself stays.
        only_untag = len(img.repo_tags) > 1 and not req.params["name"].startswith("sha256:") \
            and not img.id.split(":", 1)[1].startswith(req.params["name"])
        if user and not force and not only_untag:
            raise Conflict(f"conflict: unable to remove repository reference "
                           f"\"{req.params['name']}\" (must force) - container {user} is using "
                           f"its referenced image {img.short_id}")
        removed = await asyncio.to_thread(self.store.remove, req.params["name"], force=force)
        # The store answers docker's CLI lines ("Untagged: x", "Deleted: sha256:..."):
        # the API gives them as [{"Untagged": "x"}, {"Deleted": "sha256:..."}].
        return json_response([{kind: value} for kind, _, value in
                              (r.partition(": ") for r in removed)])

    async def prune(self, req: Request) -> Response:
        filters = json.loads(req.arg("filters") or "{}")
        dangling = filters.get("dangling", ["true"]) if isinstance(filters, dict) else ["true"]
        only = "false" not in (dangling if isinstance(dangling, list) else list(dangling))
        removed = await asyncio.to_thread(self.store.prune, set(self._in_use()),
                                          dangling_only=only)
        return json_response({"ImagesDeleted": [{"Deleted": r} for r in removed],
                              "SpaceReclaimed": 0})

    async def load(self, req: Request) -> Stream:
        f = await spool(req, self.store.limits.max_bytes)
        try:
            images = await asyncio.to_thread(load, self.store, cast(BinaryIO, f))
        finally:
            f.close()
        return Stream(_lines([{"stream": f"Loaded image: {(i.repo_tags or [i.id])[0]}\n"}
                              for i in images]))

    async def save_one(self, req: Request) -> Stream:
        return await self._save([req.params["name"]])

    async def save_many(self, req: Request) -> Stream:
        return await self._save(req.query.get("names", []))

    async def _save(self, names: builtins.list[str]) -> Stream:
        if not names:
            raise InvalidArgument("no image names given")
        for n in names:
            await asyncio.to_thread(self.store.resolve, n)
        r, w = os.pipe()

        def work() -> None:
            with open(w, "wb") as out, contextlib.suppress(BrokenPipeError):
                save(self.store, names, out)

        threading.Thread(target=work, daemon=True).start()

        async def chunks() -> AsyncIterator[bytes]:
            with open(r, "rb", buffering=0) as src:
                while data := await asyncio.to_thread(src.read, 1 << 20):
                    yield data

        return Stream(chunks(), "application/x-tar")


async def _once(msg: dict[str, Any]) -> AsyncIterator[bytes]:
    yield json.dumps(msg).encode() + b"\r\n"


async def _lines(msgs: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for m in msgs:
        yield json.dumps(m).encode() + b"\r\n"
