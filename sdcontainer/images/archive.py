"""``docker save`` and OCI image-layout archives: load and save.

Saved archives carry both layouts over the same blobs, like docker 25+:
``oci-layout`` + ``index.json`` (OCI, read by podman/skopeo ``oci-archive:``)
and ``manifest.json`` (read by ``docker load`` and ``docker-archive:``).

Loading never extracts the archive: members are looked up by name (archive
symlinks resolved lexically inside it) and streamed straight into the store,
each verified against its digest, each layer against its diff_id.
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from sdcontainer.errors import DigestMismatch, ImageError, InvalidArgument, UnsafeArchive
from sdcontainer.images import mediatypes as mt
from sdcontainer.images.digest import check_digest, hex_of, is_digest, sha256_digest
from sdcontainer.images.model import Image
from sdcontainer.images.pull import parse_platform
from sdcontainer.images.reference import Reference, parse_reference
from sdcontainer.images.store import ImageStore

_MAX_MEMBERS = 200_000
_MAX_JSON = 16 << 20
_REF_NAME = "org.opencontainers.image.ref.name"
_CONTAINERD_NAME = "io.containerd.image.name"


class _Archive:
    """Random access to an archive's members by name."""

    def __init__(self, tf: tarfile.TarFile, what: str) -> None:
        self.tf = tf
        self.what = what
        self.members: dict[str, tarfile.TarInfo] = {}
        for n, m in enumerate(tf):
            if n >= _MAX_MEMBERS:
                raise UnsafeArchive(f"{what}: more than {_MAX_MEMBERS} members")
            if m.isreg() or m.issym() or m.islnk():
                self.members[posixpath.normpath(m.name.lstrip("/"))] = m

    def _resolve(self, name: str) -> tarfile.TarInfo:
        name = posixpath.normpath(name.lstrip("/"))
        for _ in range(16):
            if name.startswith("../") or name == "..":
                raise UnsafeArchive(f"{self.what}: {name!r} points outside the archive")
            m = self.members.get(name)
            if m is None:
                raise ImageError(f"{self.what}: {name} is missing from the archive")
            if m.isreg():
                return m
            target = m.linkname
            name = posixpath.normpath(
                target if m.islnk() else posixpath.join(posixpath.dirname(name), target)
            )
        raise UnsafeArchive(f"{self.what}: too many links resolving {name!r}")

    def has(self, name: str) -> bool:
        return posixpath.normpath(name) in self.members

    def open(self, name: str) -> IO[bytes]:
        f = self.tf.extractfile(self._resolve(name))
        if f is None:
            raise ImageError(f"{self.what}: cannot read {name}")
        return f

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def read_json(self, name: str) -> Any:
        if self.size(name) > _MAX_JSON:
            raise ImageError(f"{self.what}: {name} is too large")
        with self.open(name) as f:
            data = f.read()
        try:
            return json.loads(data)
        except ValueError as e:
            raise ImageError(f"{self.what}: {name}: not valid JSON: {e}") from None

    def read_blob(self, digest: str, size: int | None, limit: int) -> bytes:
        name = f"blobs/sha256/{hex_of(digest)}"
        if size is not None and self.size(name) != size:
            raise DigestMismatch(f"{self.what}: blob {digest} is not {size} bytes")
        if self.size(name) > limit:
            raise ImageError(f"{self.what}: blob {digest} is too large")
        with self.open(name) as f:
            data = f.read()
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"{self.what}: blob {digest} does not match its digest")
        return data


@contextlib.contextmanager
def _open_archive(store: ImageStore, src: Path | BinaryIO) -> Iterator[_Archive]:
    what = str(src) if isinstance(src, Path) else "archive"
    with contextlib.ExitStack() as stack:
        if isinstance(src, Path):
            try:
                f: IO[bytes] = stack.enter_context(open(src, "rb"))
            except FileNotFoundError:
                raise InvalidArgument(f"no such file: {src}") from None
        elif src.seekable():
            f = src
        else:
            # tarfile needs to seek to members; spool a pipe to the store's tmp/.
            f = stack.enter_context(tempfile.TemporaryFile(dir=store.root / "tmp"))
            while chunk := src.read(1 << 20):
                f.write(chunk)
            f.seek(0)
        try:
            tf = stack.enter_context(tarfile.open(fileobj=f, mode="r:*"))
            yield _Archive(tf, what)
        except (tarfile.TarError, EOFError) as e:
            raise ImageError(f"{what}: not a readable image archive: {e}") from None


def _tags_from(text: str | None, store: ImageStore) -> list[Reference]:
    if not text:
        return []
    try:
        ref = parse_reference(text, store.config.default)
    except InvalidArgument:
        return []
    return [ref] if ref.digest is None else []


@dataclass(frozen=True)
class Loaded:
    """An image an archive held, with the tags the archive itself gave it (docker's
    "Loaded image: TAG" lines; none: "Loaded image ID: ID")."""

    image: Image
    tags: list[str]


def load(store: ImageStore, src: Path | BinaryIO) -> list[Image]:
    """Import every image in a docker-save or OCI-layout archive."""
    return [x.image for x in load_reporting(store, src)]


def load_reporting(store: ImageStore, src: Path | BinaryIO) -> list[Loaded]:
    """As load, with each image's tags as the archive named them."""
    with _open_archive(store, src) as ar, store.ingesting():
        legacy: list[dict[str, Any]] = []
        if ar.has("manifest.json"):
            doc = ar.read_json("manifest.json")
            if not isinstance(doc, list):
                raise ImageError(f"{ar.what}: manifest.json is not a list")
            legacy = [e for e in doc if isinstance(e, dict)]
        if ar.has("index.json"):
            return _load_oci(store, ar, legacy)
        if legacy:
            return [_load_legacy(store, ar, e) for e in legacy]
        raise ImageError(f"{ar.what}: neither index.json nor manifest.json: not an image archive")


def _legacy_tags(legacy: list[dict[str, Any]], config_digest: str) -> list[str]:
    out: list[str] = []
    for e in legacy:
        cfg = str(e.get("Config", ""))
        if posixpath.basename(cfg).removesuffix(".json") == hex_of(config_digest):
            out += [t for t in e.get("RepoTags") or [] if isinstance(t, str)]
    return out


def _load_oci(store: ImageStore, ar: _Archive, legacy: list[dict[str, Any]]) -> list[Loaded]:
    index = mt.parse_document(json.dumps(ar.read_json("index.json")).encode(), "index.json")
    if not isinstance(index, mt.Index):
        raise ImageError(f"{ar.what}: index.json is not an image index")
    images = []
    for desc in index.manifests:
        body = ar.read_blob(desc.digest, desc.size, mt.MAX_MANIFEST)
        doc = mt.parse_document(body, f"manifest {desc.digest}")
        if isinstance(doc, mt.Index):
            os_name, arch, _ = parse_platform(None)
            picks = [d for d in doc.manifests
                     if mt.platform_matches(d.platform, os_name, arch, None)]
            if not picks:
                raise ImageError(f"{ar.what}: no image for {os_name}/{arch} in {desc.digest}")
            body = ar.read_blob(picks[0].digest, picks[0].size, mt.MAX_MANIFEST)
            doc = mt.parse_document(body, f"manifest {picks[0].digest}")
        if not isinstance(doc, mt.Manifest):
            raise ImageError(f"{ar.what}: {desc.digest} is not an image manifest")
        tags = _tags_from(desc.annotations.get(_CONTAINERD_NAME), store)
        ref_name = desc.annotations.get(_REF_NAME, "")
        if not tags and (":" in ref_name or "/" in ref_name):
            tags = _tags_from(ref_name, store)
        for t in _legacy_tags(legacy, doc.config.digest):
            tags += [r for r in _tags_from(t, store) if r not in tags]
        images.append(_ingest(store, ar, body, doc, tags))
    return images


def _ingest(store: ImageStore, ar: _Archive, body: bytes, doc: mt.Manifest,
            tags: list[Reference]) -> Loaded:
    cfg_bytes = ar.read_blob(doc.config.digest, doc.config.size, mt.MAX_CONFIG)
    store.put_blob(cfg_bytes)
    diff_ids = mt.diff_ids(json.loads(cfg_bytes))
    if len(diff_ids) != len(doc.layers):
        raise ImageError(f"{ar.what}: manifest and config disagree on the number of layers")
    for layer, diff_id in zip(doc.layers, diff_ids, strict=True):
        name = f"blobs/sha256/{hex_of(layer.digest)}"
        if not store.has_blob(layer.digest):
            with ar.open(name) as f:
                store.write_blob(f, layer.digest, layer.size, f"{ar.what}: {name}")  # type: ignore[arg-type]
        store.unpack_layer(layer.digest, diff_id, f"layer {layer.digest}")
    return Loaded(store.add_image(body, tags=tags), [t.familiar() for t in tags])


def _load_legacy(store: ImageStore, ar: _Archive, entry: dict[str, Any]) -> Loaded:
    cfg_name = str(entry.get("Config", ""))
    if ar.size(cfg_name) > mt.MAX_CONFIG:
        raise ImageError(f"{ar.what}: {cfg_name} is too large")
    with ar.open(cfg_name) as f:
        cfg_bytes = f.read()
    cfg_digest = sha256_digest(cfg_bytes)
    named = posixpath.basename(cfg_name).removesuffix(".json")
    if is_digest(f"sha256:{named}") and named != hex_of(cfg_digest):
        raise DigestMismatch(f"{ar.what}: {cfg_name} does not match its digest")
    store.put_blob(cfg_bytes)
    diff_ids = mt.diff_ids(json.loads(cfg_bytes))
    layer_names = [str(n) for n in entry.get("Layers") or []]
    if len(layer_names) != len(diff_ids):
        raise ImageError(f"{ar.what}: {cfg_name} and manifest.json disagree on layers")
    layers = []
    for name, diff_id in zip(layer_names, diff_ids, strict=True):
        with ar.open(name) as f:
            blob, size = store.spool_blob(f)  # type: ignore[arg-type]
        with open(store.blob_path(blob), "rb") as bf:
            media = mt.layer_media_type(bf.read(4))
        store.unpack_layer(blob, diff_id, f"{ar.what}: {name}")
        layers.append(mt.Descriptor(media, blob, size))
    manifest = mt.build_manifest(mt.Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
                                 layers)
    tags = [r for t in entry.get("RepoTags") or [] if isinstance(t, str)
            for r in _tags_from(t, store)]
    return Loaded(store.add_image(manifest, tags=tags), [t.familiar() for t in tags])


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None,
         path: Path | None = None) -> None:
    ti = tarfile.TarInfo(name)
    ti.mtime = int(time.time())
    ti.mode = 0o644
    if path is not None:
        ti.size = path.stat().st_size
        with open(path, "rb") as f:
            tf.addfile(ti, f)
    else:
        assert data is not None
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))


def save(store: ImageStore, refs: list[str], out: BinaryIO) -> None:
    """Write the images REFS name as one archive to OUT.

    A reference by name puts that name in the archive; by id, the image is
    saved untagged.
    """
    if not refs:
        raise InvalidArgument("nothing to save: give at least one image")
    state = store._snapshot()  # one consistent view for the whole archive
    chosen: dict[str, list[Reference]] = {}
    for text in refs:
        image_id, ref = store._find(text, state)
        names = chosen.setdefault(image_id, [])
        if ref is not None and ref.tag is not None and ref not in names:
            names.append(ref)
    written: set[str] = set()
    index: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for image_id, names in chosen.items():
            mdigest = check_digest(state["images"][image_id]["manifest"])
            body = store.read_blob(mdigest, mt.MAX_MANIFEST)
            doc = mt.parse_manifest(body, f"manifest {mdigest}")
            for desc in (mt.Descriptor(doc.media_type, mdigest, len(body)), doc.config,
                         *doc.layers):
                if desc.digest not in written:
                    _add(tf, f"blobs/sha256/{hex_of(desc.digest)}",
                         path=store.blob_path(desc.digest))
                    written.add(desc.digest)
            base = {"mediaType": doc.media_type, "digest": mdigest, "size": len(body)}
            slots: list[Reference | None] = [*names] or [None]
            for ref in slots:
                entry: dict[str, Any] = dict(base)
                if ref is not None:
                    entry["annotations"] = {_CONTAINERD_NAME: str(ref), _REF_NAME: ref.tag or ""}
                index.append(entry)
            legacy.append({
                "Config": f"blobs/sha256/{hex_of(doc.config.digest)}",
                "RepoTags": [r.familiar() for r in names],
                "Layers": [f"blobs/sha256/{hex_of(layer.digest)}" for layer in doc.layers],
            })
        _add(tf, "index.json", json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index}).encode())
        _add(tf, "manifest.json", json.dumps(legacy).encode())
