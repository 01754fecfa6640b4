"""A container's filesystem changes: commit to an image, list them, export the rootfs.

All three read the container's overlay directories from the host: the upper
directory holds what the container changed (overlay's whiteouts for deletions),
the image's unpacked layers what it started from.  Nothing needs the container to
run, or its rootfs to be mounted in the daemon's namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from ..errors import InvalidArgument, SdcError
from ..images.build.builder import apply_meta
from ..images.build.dockerfile import parse_line
from ..images.layerdiff import (
    LAUNCHER_MOUNT_POINTS,
    Change,
    MergedTree,
    changes,
    mount_points,
    write_layer,
    write_merged,
)
from ..images.model import Image
from ..images.reference import Reference, parse_reference
from ..util.clock import now
from .core import Engine
from .records import Container

log = logging.getLogger(__name__)

# What `commit --change` may set (docker's list).
CHANGE_COMMANDS = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL",
                   "USER", "VOLUME", "WORKDIR", "HEALTHCHECK", "SHELL"}


@dataclass(frozen=True)
class CommitRequest:
    """POST /commit's parameters."""

    container: str
    repo: str = ""
    tag: str = ""
    comment: str = ""
    author: str = ""
    pause: bool = True
    changes: list[str] = field(default_factory=list)


def _container_config(c: Container, image: Image) -> dict[str, Any]:
    """The image config's ``config`` object for C, as docker commits it."""
    cfg = c.config
    out = copy.deepcopy(image.raw_config.get("config") or {})
    env = [e for e in cfg.env if not e.startswith("HOSTNAME=")]
    out.update({"Env": env, "Cmd": cfg.cmd or None, "Entrypoint": cfg.entrypoint or None,
                "WorkingDir": "" if cfg.working_dir == "/" else cfg.working_dir,
                "User": cfg.user, "Labels": dict(cfg.labels) or None})
    ports = getattr(cfg, "exposed_ports", None)
    if ports:
        out["ExposedPorts"] = {p: {} for p in ports}
    if cfg.stop_signal and cfg.stop_signal != "SIGTERM":
        out["StopSignal"] = cfg.stop_signal
    return {k: v for k, v in out.items() if v not in (None, "", [], {})}


def _parse_changes(lines: list[str]) -> list[Any]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        ins = parse_line(line, n)
        if ins.cmd not in CHANGE_COMMANDS:
            raise InvalidArgument(f"{ins.cmd} is not a valid change command")
        out.append(ins)
    return out


def _mount_points(c: Container, image: Image) -> frozenset[str]:
    """What the launcher made in C's upper directory only to mount onto."""
    return mount_points(c.dir / "upper", MergedTree(image.layers),
                        [*LAUNCHER_MOUNT_POINTS, *(m.target for m in c.config.mounts)])


async def commit(engine: Engine, req: CommitRequest) -> Image:
    """Make an image of the container's image plus what the container changed."""
    c = engine.get(req.container)
    instructions = _parse_changes(req.changes)
    tag: Reference | None = None
    if req.repo:
        tag = parse_reference(f"{req.repo}:{req.tag}" if req.tag else req.repo,
                              engine.images.config.default)
        if tag.digest is not None:
            raise InvalidArgument(f"cannot commit to a digest reference: {req.repo}")
    elif req.tag:
        raise InvalidArgument("a tag needs a repository name")
    image = await asyncio.to_thread(engine.images.resolve, c.config.image_id)
    paused = False
    if req.pause and c.running and not c.state.paused:
        try:
            await engine.pause(c.id, True)
            paused = True
        except SdcError as e:
            # No freezer (a hybrid or legacy cgroup host): the layer is read from the
            # upper directory, so commit unpaused, as docker does when it cannot pause.
            log.info("committing container %s without pausing it: %s", c.name, e)
    try:
        return await asyncio.to_thread(_commit, engine, c, image, instructions, req, tag)
    finally:
        if paused:
            with contextlib.suppress(SdcError):
                await engine.pause(c.id, False)


def _commit(engine: Engine, c: Container, image: Image, instructions: list[Any],
            req: CommitRequest, tag: Reference | None) -> Image:
    store = engine.images
    cfg = copy.deepcopy(image.raw_config)
    cfg["config"] = _container_config(c, image)
    env = dict(e.partition("=")[::2] for e in cfg["config"].get("Env", []))
    for ins in instructions:
        apply_meta(cfg, ins, env, "\\")
    when = now()
    cfg["created"] = when
    if req.author:
        cfg["author"] = req.author
    # docker's image config carries the commit message at the top too (inspect's Comment).
    cfg.pop("comment", None)
    if req.comment:
        cfg["comment"] = req.comment
    cfg.pop("container_config", None)
    work = Path(tempfile.mkdtemp(dir=store.root / "tmp", prefix="commit-"))
    try:
        tar = work / "layer.tar"
        with open(tar, "wb") as f:
            write_layer(c.dir / "upper", f, id_shift=c.config.userns_base,
                        skip=_mount_points(c, image))
        with store.ingesting():
            with open(tar, "rb") as f:
                desc, diff_id = store.add_layer(f)
            rootfs = cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), diff_id]
            hist: dict[str, Any] = {"created": when, "created_by": " ".join(c.config.argv)}
            if req.comment:
                hist["comment"] = req.comment
            if req.author:
                hist["author"] = req.author
            cfg["history"] = [*cfg.get("history", []), hist]
            layers = [*store.layer_descriptors(image), desc]
            img: Image = store.add_config_image(cfg, layers, tags=[tag] if tag else [],
                                                parent=image.id)
            return img
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def container_changes(engine: Engine, ref: str) -> list[Change]:
    """What container REF changed in its image's filesystem."""
    c = engine.get(ref)
    image = await asyncio.to_thread(engine.images.resolve, c.config.image_id)
    return await asyncio.to_thread(changes, c.dir / "upper", MergedTree(image.layers),
                                   await asyncio.to_thread(_mount_points, c, image))


async def export(engine: Engine, ref: str) -> AsyncIterator[bytes]:
    """Container REF's merged root filesystem as a tar stream."""
    c = engine.get(ref)
    image = await asyncio.to_thread(engine.images.resolve, c.config.image_id)
    tree = MergedTree([*image.layers, c.dir / "upper"])
    # Written to an unlinked file first: the tar is made in a thread, and a slow
    # client must not hold the layers' directories open for its whole download.
    tmp_dir = engine.images.root / "tmp"
    f: IO[bytes] = await asyncio.to_thread(
        lambda: tempfile.TemporaryFile(dir=tmp_dir))  # noqa: SIM115 - closed by chunks()

    def write() -> None:
        write_merged(tree, cast(BinaryIO, f), id_shift=c.config.userns_base)
        f.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            await asyncio.to_thread(write)
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                yield chunk
        finally:
            f.close()

    return chunks()
