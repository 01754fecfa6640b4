"""Docker Engine API: the /images endpoints, over the image store."""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import fnmatch
import json
import logging
import os
import tarfile
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO, cast

from .. import paths
from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, NoSuchImage, SdcError
from ..images.archive import load_reporting, save
from ..images.model import Image
from ..images.pull import pull
from ..util import fileio
from ..util.clock import unix_time
from . import filters
from .containers import refuse_control_chars
from .http import MAX_BODY, Request, Response, Router, Stream, body_chunks, json_response

log = logging.getLogger(__name__)
IMAGE_FILTERS = ("reference", "dangling", "label", "before", "since")


def precise_time(rfc: str) -> float:
    """RFC 3339 to unix seconds with the fraction (0 for an unset or malformed time)."""
    import datetime

    try:
        return datetime.datetime.fromisoformat(rfc.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def registry_auth(header: str | None) -> tuple[str, str] | None:
    """Credentials from an X-Registry-Auth header (base64url JSON of docker's AuthConfig);
    None when absent or empty.  An identity token goes as the password of "<token>"."""
    if not header:
        return None
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise InvalidArgument("invalid X-Registry-Auth header") from None
    if not isinstance(data, dict):
        raise InvalidArgument("invalid X-Registry-Auth header")
    if data.get("identitytoken"):
        return "<token>", str(data["identitytoken"])
    if data.get("username") or data.get("password"):
        return str(data.get("username") or ""), str(data.get("password") or "")
    return None


def summary(img: Image) -> dict[str, Any]:
    """An image as GET /images/json lists it."""
    return {
        "Id": img.id, "ParentId": img.parent, "RepoTags": img.repo_tags or ["<none>:<none>"],
        "RepoDigests": img.repo_digests, "Created": unix_time(img.created), "Size": img.size,
        "VirtualSize": img.size, "SharedSize": -1, "Labels": img.config.labels or {},
        "Containers": -1,
    }


def _container_config(img: Image) -> dict[str, Any]:
    """The image's defaults in the shape of a container's Config, every key present, as
    dockerd shows an image's Config and ContainerConfig (API < 1.45)."""
    cfg = img.config
    raw = img.raw_config.get("config") or {}
    volumes = raw.get("Volumes") if isinstance(raw, dict) else None
    return {
        "Hostname": "", "Domainname": "", "User": cfg.user, "AttachStdin": False,
        "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": {p: {} for p in cfg.exposed_ports} or None,
        "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": cfg.env, "Cmd": cfg.cmd,
        "Healthcheck": cfg.healthcheck, "Image": "",
        "Volumes": dict(volumes) if isinstance(volumes, dict) and volumes else None,
        "WorkingDir": cfg.working_dir, "Entrypoint": cfg.entrypoint, "OnBuild": None,
        "Labels": cfg.labels, "StopSignal": cfg.stop_signal,
    }


def inspect(img: Image) -> dict[str, Any]:
    """An image as GET /images/{name}/json shows it."""
    return {
        "Id": img.id, "RepoTags": img.repo_tags, "RepoDigests": img.repo_digests,
        "Parent": img.parent,
        "Comment": str(img.raw_config.get("comment", "")), "Created": img.created,
        "Container": "", "DockerVersion": "",
        "Author": str(img.raw_config.get("author", "")),
        "Config": _container_config(img),
        # docker-compose 1.29 reads ContainerConfig.Volumes when it recreates a container;
        # dockerd fills it from the builder's container, ours carries the image's defaults.
        "ContainerConfig": _container_config(img),
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
        r.add("GET", "/images/{name*}/history", self.history)
        r.add("POST", "/images/{name*}/push", self.push)
        r.add("GET", "/distribution/{name*}/json", self.distribution)
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
        # `docker pull NAME@sha256:...` arrives as fromImage=NAME&tag=sha256:...
        sep = "@" if ":" in tag and tag.split(":", 1)[0] in ("sha256", "sha512") else ":"
        ref = image if not tag or "@" in image else f"{image}{sep}{tag}"
        return Stream(self._pull(ref, req.arg("platform") or None,
                                 registry_auth(req.headers.get("x-registry-auth"))))

    async def _pull(self, ref: str, platform: str | None,
                    credentials: tuple[str, str] | None = None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def progress(p: Any) -> None:
            msg: dict[str, Any] = {"status": p.status, "id": p.id}
            if p.total:
                msg["progressDetail"] = {"current": p.current, "total": p.total}
            loop.call_soon_threadsafe(queue.put_nowait, msg)

        def work() -> None:
            try:
                img = pull(self.store, ref, platform=platform, progress=progress,
                           credentials=credentials)
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

    async def push(self, req: Request) -> Stream:
        """POST /images/{name}/push: to its registry, progress as docker streams it."""
        from ..images.push import local_tags, push

        name, tag = req.params["name"], req.arg("tag") or ""
        ref = f"{name}:{tag}" if tag else name
        # No tag: every local tag of the repository, as dockerd (`docker push -a`).
        refs = [ref] if tag else await asyncio.to_thread(local_tags, self.store, name)
        if not refs:
            raise NoSuchImage(f"An image does not exist locally with the tag: {name}")
        for one in refs:
            await asyncio.to_thread(self.store.resolve, one)  # a missing image is a 404 now
        credentials = registry_auth(req.headers.get("x-registry-auth"))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def progress(p: Any) -> None:
            msg: dict[str, Any] = {"status": p.status}
            if p.id:
                msg["id"] = p.id
            if p.total:
                msg["progressDetail"] = {"current": p.current, "total": p.total}
            loop.call_soon_threadsafe(queue.put_nowait, msg)

        def work() -> None:
            try:
                for one in refs:
                    pushed_tag, digest, size = push(self.store, one, progress=progress,
                                                    credentials=credentials)
                    loop.call_soon_threadsafe(queue.put_nowait, {
                        "progressDetail": {},
                        "aux": {"Tag": pushed_tag, "Digest": digest, "Size": size}})
            except Exception as e:  # the stream must say why it ended
                if not isinstance(e, SdcError):
                    log.exception("push of %s failed", ref)
                message = str(e) if isinstance(e, SdcError) else f"push failed: {e}"
                loop.call_soon_threadsafe(queue.put_nowait,
                                          {"error": message, "errorDetail": {"message": message}})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=work, daemon=True).start()

        async def chunks() -> AsyncIterator[bytes]:
            while (msg := await queue.get()) is not None:
                yield json.dumps(msg).encode() + b"\r\n"

        return Stream(chunks())

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
        f = filters.parse(req.arg("filters"), IMAGE_FILTERS)
        images = await asyncio.to_thread(self.store.list)
        if req.arg("filter"):  # API < 1.25's name filter
            f.setdefault("reference", []).append(req.arg("filter") or "")
        keep = await asyncio.to_thread(self._image_filter, f, images)
        return json_response([summary(i) for i in images if keep(i)])

    def _image_filter(self, f: dict[str, builtins.list[str]], images: builtins.list[Image]
                      ) -> Callable[[Image], bool]:
        """docker's image filters: reference, dangling, label, before, since."""
        dangling: bool | None = None
        for value in f.get("dangling", []):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            dangling = value.lower() in ("true", "1")
        # Full precision, as dockerd compares: images made within one second still order.
        created = {i.id: precise_time(i.created) for i in images}
        bounds: builtins.list[tuple[str, float]] = []
        for key in ("before", "since"):
            for ref in f.get(key, []):
                bounds.append((key, created[self.store.resolve(ref).id]))
        refs = f.get("reference", [])

        def matches_ref(img: Image) -> bool:
            for pattern in refs:
                for t in img.repo_tags:
                    repo = t.rsplit(":", 1)[0] if ":" in t.rsplit("/", 1)[-1] else t
                    short = [t, repo]
                    for prefix in ("docker.io/library/", "docker.io/"):
                        short += [x.removeprefix(prefix) for x in (t, repo)]
                    if any(fnmatch.fnmatchcase(x, pattern) for x in short):
                        return True
            return False

        def keep(img: Image) -> bool:
            if dangling is not None and dangling != (not img.repo_tags):
                return False
            if refs and not matches_ref(img):
                return False
            if not filters.labels_match(img.config.labels or {}, f.get("label", [])):
                return False
            for key, t in bounds:
                c = created[img.id]
                if (key == "before" and c >= t) or (key == "since" and c <= t):
                    return False
            return True

        return keep

    async def history(self, req: Request) -> Response:
        """GET /images/{name}/history: the config's history, newest first."""
        img = await asyncio.to_thread(self.store.resolve, req.params["name"])
        entries = img.raw_config.get("history") or []
        out: builtins.list[dict[str, Any]] = []
        diff_ids = list(img.raw_config.get("rootfs", {}).get("diff_ids", []))
        layer_sizes = [fileio.du(p) for p in img.layers] if len(img.layers) == len(diff_ids) \
            else []
        layer = 0
        for e in entries:
            empty = bool(e.get("empty_layer"))
            size = 0
            if not empty and layer < len(layer_sizes):
                size = layer_sizes[layer]
            if not empty:
                layer += 1
            out.append({"Id": "<missing>", "Created": unix_time(str(e.get("created", ""))),
                        "CreatedBy": str(e.get("created_by", "")), "Tags": None,
                        "Size": size, "Comment": str(e.get("comment", ""))})
        # As dockerd: an entry that is the top of a local ancestor (a commit's or build
        # step's parent) shows that image's id and tags; older ones are <missing>.
        for depth, ancestor in await asyncio.to_thread(self._ancestry, img):
            if 0 < depth <= len(out):
                out[depth - 1].update({"Id": ancestor.id, "Tags": ancestor.repo_tags or None})
        out.reverse()
        if out:
            out[0].update({"Id": img.id, "Tags": img.repo_tags or None})
        else:
            out = [{"Id": img.id, "Created": unix_time(img.created), "CreatedBy": "",
                    "Tags": img.repo_tags or None, "Size": img.size, "Comment": ""}]
        return json_response(out)

    def _ancestry(self, img: Image) -> builtins.list[tuple[int, Image]]:
        """IMG's local parents, each with the length of its history (a prefix of IMG's)."""
        out: builtins.list[tuple[int, Image]] = []
        seen = {img.id}
        while img.parent and img.parent not in seen:
            seen.add(img.parent)
            try:
                img = self.store.resolve(img.parent)
            except SdcError:
                break
            out.append((len(img.raw_config.get("history") or []), img))
        return out

    async def distribution(self, req: Request) -> Response:
        """GET /distribution/{name}/json: the registry's descriptor and platforms."""
        from ..images.pull import distribution

        info = await asyncio.to_thread(
            distribution, self.store, req.params["name"],
            registry_auth(req.headers.get("x-registry-auth")))
        return json_response({
            "Descriptor": {"mediaType": info.media_type, "digest": info.digest,
                           "size": info.size},
            "Platforms": [{"architecture": a, "os": o, **({"variant": v} if v else {})}
                          for o, a, v in info.platforms]})

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
        before = {i.id: i for i in await asyncio.to_thread(self.store.list)}
        removed = await asyncio.to_thread(self.store.prune, set(self._in_use()),
                                          dangling_only=only)
        deleted: builtins.list[dict[str, str]] = []
        reclaimed = 0
        for image_id in removed:
            img = before.get(image_id)
            if img is not None:
                deleted += [{"Untagged": t} for t in img.repo_tags]
                reclaimed += img.size
            deleted.append({"Deleted": image_id})
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def load(self, req: Request) -> Stream:
        f = await spool(req, self.store.limits.max_bytes)
        try:
            loaded = await asyncio.to_thread(load_reporting, self.store, cast(BinaryIO, f))
        except (SdcError, tarfile.TarError, EOFError) as e:
            # As dockerd: the stream has begun, so a bad archive is an error message
            # in it (docker-py raises ImageLoadError from it), not an HTTP status.
            message = str(e) if isinstance(e, SdcError) else f"invalid archive: {e}"
            return Stream(_once({"errorDetail": {"message": message}, "error": message}))
        finally:
            f.close()
        lines = []
        for x in loaded:
            if x.tags:
                lines += [{"stream": f"Loaded image: {t}\n"} for t in x.tags]
            else:
                lines.append({"stream": f"Loaded image ID: {x.image.id}\n"})
        return Stream(_lines(lines))

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
