"""The build cache: which image a step produced, by what went into it.

A step's key hashes its parent image id, the instruction as it will run (variables
expanded), the build args in effect, and for COPY/ADD the checksum of the sources'
content (never their times).  The map lives in a file beside the image store, so it
survives a daemon restart; an entry whose image is gone is a miss.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...util import fileio
from ...util.fileio import write_json_atomic
from ..store import ImageStore


def step_key(parent: str, instruction: str, args: dict[str, str], content: str = "",
             platform: str = "") -> str:
    """The cache key of one step."""
    doc = json.dumps({"parent": parent, "instruction": instruction,
                      "args": sorted(args.items()), "content": content,
                      "platform": platform}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


class BuildCache:
    """Step key -> image id, in ROOT/build-cache.json."""

    def __init__(self, root: Path) -> None:
        self.path = root / "build-cache.json"
        self._lock = root / "build-cache.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, str]:
        try:
            with open(self.path, "rb") as f:
                data = json.load(f)
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, key: str) -> str | None:
        """The image id recorded for KEY, if any."""
        with self._locked():
            return self._read().get(key)

    def put(self, key: str, image_id: str) -> None:
        """Record that KEY produced IMAGE_ID."""
        with self._locked():
            data = self._read()
            data[key] = image_id
            write_json_atomic(self.path, data)

    def entries(self) -> dict[str, str]:
        """Every key and the image it maps to."""
        with self._locked():
            return self._read()

    def drop(self, image_ids: set[str]) -> None:
        """Forget every entry naming one of IMAGE_IDS."""
        with self._locked():
            data = {k: v for k, v in self._read().items() if v not in image_ids}
            write_json_atomic(self.path, data)


@dataclass(frozen=True)
class PruneResult:
    """What `builder prune` removed."""

    deleted: list[str]
    reclaimed: int  # bytes of layers and blobs freed


def prune(store: ImageStore, keep: set[str], everything: bool = False) -> PruneResult:
    """Remove build steps' images: the dangling ones (that no tagged image is built on),
    or with EVERYTHING all of them; never those in KEEP (used by containers)."""
    cache = BuildCache(store.root)
    cached = set(cache.entries().values())
    images = {i.id: i for i in store.list(hidden=True)}
    # Builds are what make hidden images: every one is build cache, in the map or not
    # (a later build of the same step replaces the map's entry).
    steps = set(images) - {i.id for i in store.list()}
    tagged = [img.raw_config for img in images.values() if img.repo_tags]
    doomed: set[str] = set()
    for image_id in steps:
        img = images[image_id]
        if image_id in keep:
            continue
        if everything or not any(prefix_of(img.raw_config, t) for t in tagged):
            doomed.add(image_id)
    before = _disk_bytes(store)
    deleted = store.forget(doomed)
    cache.drop(set(deleted) | (cached - set(images)))
    return PruneResult(sorted(deleted), max(0, before - _disk_bytes(store)))


def prefix_of(cfg: dict[str, Any], source: dict[str, Any]) -> bool:
    """Whether image config CFG is an ancestor of SOURCE: its layers and history a
    prefix of SOURCE's, as docker matches `--cache-from` images."""
    def hist(c: dict[str, Any]) -> list[tuple[str, bool]]:
        return [(str(h.get("created_by", "")), bool(h.get("empty_layer")))
                for h in c.get("history") or []]

    mine, theirs = hist(cfg), hist(source)
    ids = cfg.get("rootfs", {}).get("diff_ids", [])
    src_ids = source.get("rootfs", {}).get("diff_ids", [])
    return bool(theirs[:len(mine)] == mine and src_ids[:len(ids)] == ids)


def _disk_bytes(store: ImageStore) -> int:
    return sum(fileio.du(store.root / top, blocks=True) for top in ("blobs", "layers"))
