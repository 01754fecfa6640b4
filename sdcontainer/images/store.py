"""The content-addressed image store.

Layout under the root (every directory 0700)::

    blobs/sha256/<hex>        manifests, configs and layer blobs, as fetched
    layers/<hex>/diff/        a layer unpacked once per diff_id, used as an overlay lower
    layers/<hex>/layer.json   {"diff_id", "size"}
    tmp/                      downloads and unpacks in progress (same filesystem: rename)
    locks/<hex>.lock          per-layer unpack locks
    locks/blob-<hex>.lock     per-blob download locks
    state.json                images and tags, rewritten atomically under state.lock

Everything lands in tmp/ first and is renamed into place once verified, so a
crash leaves nothing that looks complete.  Ingesting holds gc.lock shared and
garbage collection holds it exclusive, so a removal never deletes the blobs of
a pull still in progress.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import fcntl
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

from sdcontainer import paths
from sdcontainer.errors import Conflict, DigestMismatch, ImageError, InvalidArgument, NoSuchImage
from sdcontainer.images import mediatypes as mt
from sdcontainer.images.config import RegistriesConfig, load_config
from sdcontainer.images.digest import check_digest, copy_verified, hex_of, sha256_digest
from sdcontainer.images.extract import Limits, extract_layer
from sdcontainer.images.model import Image, ImageConfig
from sdcontainer.images.reference import Reference, is_image_id, parse_reference
from sdcontainer.util import clock, crashpoints
from sdcontainer.util.fileio import write_json_atomic

logger = logging.getLogger(__name__)

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    """This machine's architecture in OCI (GOARCH) spelling."""
    m = platform.machine()
    return _GO_ARCH.get(m, m)


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding PATH before a rename publishes it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class ImageStore:
    """Images, their blobs and unpacked layers under ROOT (default paths.IMAGES_DIR)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        config: RegistriesConfig | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else paths.IMAGES_DIR
        self.config = config if config is not None else load_config()
        self.limits = limits or Limits()
        self._blobs = self.root / "blobs" / "sha256"
        self._layers = self.root / "layers"
        self._tmp = self.root / "tmp"
        self._locks = self.root / "locks"
        self._state_file = self.root / "state.json"
        for d in (self.root, self.root / "blobs", self._blobs, self._layers, self._tmp,
                  self._locks):
            d.mkdir(mode=0o700, exist_ok=True)

    # -- locks and state ---------------------------------------------------

    @contextlib.contextmanager
    def _flock(self, path: Path, how: int) -> Iterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def ingesting(self) -> Iterator[None]:
        """Hold while adding blobs and layers not yet referenced by state.json."""
        with self._flock(self.root / "gc.lock", fcntl.LOCK_SH):
            yield

    def _read_state(self) -> dict[str, Any]:
        try:
            with open(self._state_file, "rb") as f:
                state: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            state = {}
        state.setdefault("images", {})
        state.setdefault("tags", {})
        return state

    def _write_json_atomic(self, path: Path, data: object) -> None:
        write_json_atomic(path, data, sort_keys=True)

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write state.json under its lock."""
        with self._flock(self.root / "state.lock", fcntl.LOCK_EX):
            state = self._read_state()
            yield state
            self._write_json_atomic(self._state_file, state)

    def _snapshot(self) -> dict[str, Any]:
        with self._flock(self.root / "state.lock", fcntl.LOCK_SH):
            return self._read_state()

    # -- blobs ---------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where blob DIGEST lives (validated before it becomes a path)."""
        return self._blobs / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        """True if blob DIGEST is stored."""
        return self.blob_path(digest).is_file()

    @contextlib.contextmanager
    def blob_lock(self, digest: str) -> Iterator[None]:
        """Hold while fetching blob DIGEST, so concurrent pulls download it once.

        Re-check has_blob() after taking it: the previous holder may have stored it.
        """
        with self._flock(self._locks / f"blob-{hex_of(digest)}.lock", fcntl.LOCK_EX):
            yield

    def read_blob(self, digest: str, max_size: int = 16 << 20) -> bytes:
        """A small blob (manifest, config), re-verified as it is read."""
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(max_size + 1)
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the store") from None
        if len(data) > max_size:
            raise ImageError(f"blob {digest} is larger than {max_size} bytes")
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"blob {digest} in the store is corrupt")
        return data

    def write_blob(self, src: BinaryIO, digest: str, size: int | None, what: str) -> Path:
        """Stream SRC into the store as blob DIGEST, verifying size and digest.

        Nothing is left behind on a mismatch.  Returns the blob's path.
        """
        final = self.blob_path(digest)
        if final.is_file():
            return final
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as f:
                copy_verified(src, f, digest, size, what)
                f.flush()
                os.fsync(f.fileno())
            crashpoints.hit("blob-written")
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return final

    def put_blob(self, data: bytes) -> str:
        """Store DATA as a blob and return its digest."""
        digest = sha256_digest(data)
        if not self.has_blob(digest):
            self.write_blob(io.BytesIO(data), digest, len(data), "blob")
        return digest

    def spool_blob(self, src: BinaryIO) -> tuple[str, int]:
        """Store a stream whose digest is not known in advance."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := src.read(1 << 20):
                    size += len(chunk)
                    if size > self.limits.max_bytes:
                        raise ImageError(
                            f"input larger than the limit of {self.limits.max_bytes} bytes"
                        )
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            digest = "sha256:" + h.hexdigest()
            os.rename(tmp, self.blob_path(digest))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest, size

    # -- layers --------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> Path:
        """The unpacked ``diff`` directory of layer DIFF_ID (may not exist)."""
        return self._layers / hex_of(diff_id) / "diff"

    def _layer_size(self, diff_id: str) -> int:
        try:
            with open(self._layers / hex_of(diff_id) / "layer.json", "rb") as f:
                return int(json.load(f).get("size", 0))
        except (FileNotFoundError, ValueError):
            return 0

    def unpack_layer(self, blob_digest: str, diff_id: str | None, what: str) -> str:
        """Unpack stored blob BLOB_DIGEST once; return its diff_id.

        With DIFF_ID given, the uncompressed stream must hash to it (else
        DigestMismatch naming WHAT).  Concurrent callers for the same layer
        serialize on a per-layer lock; the loser finds the layer done.
        """
        if diff_id is not None:
            check_digest(diff_id, f"{what} diff_id")
            if self.layer_dir(diff_id).is_dir():
                return diff_id
        lock = self._locks / f"{hex_of(diff_id or blob_digest)}.lock"
        with self._flock(lock, fcntl.LOCK_EX):
            if diff_id is not None and self.layer_dir(diff_id).is_dir():
                return diff_id
            work = Path(tempfile.mkdtemp(dir=self._tmp, prefix="layer-"))
            try:
                with open(self.blob_path(blob_digest), "rb") as f:
                    stats = extract_layer(f, work / "diff", limits=self.limits, what=what)
                if diff_id is not None and stats.diff_id != diff_id:
                    raise DigestMismatch(
                        f"{what}: uncompressed content hashes to {stats.diff_id}, "
                        f"the image config says {diff_id}"
                    )
                final = self._layers / hex_of(stats.diff_id)
                if final.is_dir():
                    return stats.diff_id
                self._write_json_atomic(
                    work / "layer.json",
                    {"diff_id": stats.diff_id, "blob": blob_digest, "size": stats.size},
                )
                _syncfs(work)
                crashpoints.hit("layer-unpacked")
                os.rename(work, final)
                return stats.diff_id
            finally:
                shutil.rmtree(work, ignore_errors=True)

    # -- images --------------------------------------------------------------

    def add_image(
        self,
        manifest: bytes,
        *,
        tags: Sequence[Reference] = (),
        repo_digest: str | None = None,
        hidden: bool = False,
        parent: str = "",
    ) -> Image:
        """Record an image whose manifest, config and layers are all stored.

        The manifest is stored as given (its digest names it).  Every layer
        listed in the config must already be unpacked; TAGS move to this image.
        HIDDEN marks a new image as a build's intermediate step: `list` leaves it
        out while it has no tag (as docker hides intermediate images).  PARENT is the
        local image a commit or build step made this one from (docker's Parent: store
        metadata, not part of the config).
        """
        manifest_digest = self.put_blob(manifest)
        doc = mt.parse_manifest(manifest, manifest_digest)
        config_digest = doc.config.digest
        cfg = json.loads(self.read_blob(config_digest))
        for diff_id in mt.diff_ids(cfg):
            if not self.layer_dir(diff_id).is_dir():
                raise ImageError(f"layer {diff_id} of image {config_digest} is not unpacked")
        with self._state() as state:
            is_new = config_digest not in state["images"]
            rec = state["images"].setdefault(config_digest, {"repo_digests": []})
            if hidden and is_new:
                rec["hidden"] = True
            elif not hidden:
                rec.pop("hidden", None)
            rec["manifest"] = manifest_digest
            if parent and parent != config_digest:
                rec["parent"] = parent
            rec.setdefault("added", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            if repo_digest and repo_digest not in rec["repo_digests"]:
                rec["repo_digests"].append(repo_digest)
            for ref in tags:
                state["tags"][str(ref)] = config_digest
        return self._image(config_digest, self._snapshot())

    def _image(self, image_id: str, state: dict[str, Any]) -> Image:
        rec = state["images"][image_id]
        cfg = json.loads(self.read_blob(image_id))
        diff_ids = mt.diff_ids(cfg)
        tags = sorted(
            parse_reference(t).familiar() for t, i in state["tags"].items() if i == image_id
        )
        digests = sorted(
            Reference(r.registry, r.repository, None, r.digest).familiar()
            for r in (parse_reference(d) for d in rec.get("repo_digests", []))
        )
        return Image(
            id=image_id,
            repo_tags=tags,
            repo_digests=digests,
            # A layer may repeat (two RUNs changing nothing, empty layers of pulled
            # images); overlayfs refuses a lowerdir twice (ELOOP), and the lower copy
            # adds nothing the upper one does not give again: keep the upper one.
            layers=[self.layer_dir(d) for i, d in enumerate(diff_ids)
                    if d not in diff_ids[i + 1:]],
            config=ImageConfig.from_oci(cfg.get("config")),
            created=str(cfg.get("created") or ""),
            size=sum(self._layer_size(d) for d in diff_ids),
            architecture=str(cfg.get("architecture") or ""),
            os=str(cfg.get("os") or ""),
            raw_config=cfg,
            manifest_digest=str(rec.get("manifest", "")),
            # Only while the parent is still here (a removed one is no one's parent).
            parent=rec["parent"] if rec.get("parent") in state["images"] else "",
        )

    def _find(self, ref_or_id: str, state: dict[str, Any]) -> tuple[str, Reference | None]:
        """Resolve to (image id, the reference used if it was a name)."""
        ref: Reference | None = None
        with contextlib.suppress(InvalidArgument):
            ref = parse_reference(ref_or_id, self.config.default)
        if ref is not None:
            if ref.digest is not None:
                for image_id, rec in state["images"].items():
                    if str(Reference(ref.registry, ref.repository, None, ref.digest)) in rec.get(
                        "repo_digests", []
                    ) or rec.get("manifest") == ref.digest:
                        return image_id, ref
            elif str(ref) in state["tags"]:
                return state["tags"][str(ref)], ref
        prefix = ref_or_id.removeprefix("sha256:")
        # A bare hex word may be a name too ("cafe"); names win, as with docker.
        looks_like_id = ref is None or ref_or_id.startswith("sha256:") or is_image_id(prefix) or (
            ":" not in ref_or_id and "/" not in ref_or_id
        )
        if prefix and all(c in "0123456789abcdef" for c in prefix) and looks_like_id:
            found = [i for i in state["images"] if hex_of(i).startswith(prefix)]
            if len(found) == 1:
                return found[0], None
            if len(found) > 1:
                raise InvalidArgument(f"image id prefix {prefix!r} is ambiguous")
        raise NoSuchImage(f"no such image: {ref_or_id}")

    def resolve(self, ref_or_id: str) -> Image:
        """Find an image by name[:tag], name@digest, or (short) id."""
        state = self._snapshot()
        image_id, _ = self._find(ref_or_id, state)
        return self._image(image_id, state)

    def list(self, *, hidden: bool = False) -> list[Image]:
        """Every image, newest first; build steps' untagged images only if HIDDEN."""
        state = self._snapshot()
        tagged = set(state["tags"].values())
        images = [self._image(i, state) for i, rec in state["images"].items()
                  if hidden or not rec.get("hidden") or i in tagged]
        return sorted(images, key=lambda im: im.created, reverse=True)

    def tag(self, src: str, new_ref: str) -> Reference:
        """Make NEW_REF name the image SRC resolves to."""
        ref = parse_reference(new_ref, self.config.default)
        if ref.digest is not None:
            raise InvalidArgument(f"cannot tag with a digest: {new_ref}")
        with self._state() as state:
            image_id, _ = self._find(src, state)
            state["tags"][str(ref)] = image_id
        return ref

    def remove(self, ref: str, *, force: bool = False) -> builtins.list[str]:
        """Untag REF, deleting the image once nothing names it.

        By id, an image with several tags needs FORCE.  Returns docker-style
        lines: ``Untagged: alpine:latest``, ``Deleted: sha256:...``.  Checking
        that no container uses the image is the caller's job.
        """
        out: list[str] = []
        with self._state() as state:
            image_id, by_ref = self._find(ref, state)
            tags = [t for t, i in state["tags"].items() if i == image_id]
            rec = state["images"][image_id]
            if by_ref is not None and by_ref.digest is None:
                del state["tags"][str(by_ref)]
                out.append(f"Untagged: {by_ref.familiar()}")
                tags.remove(str(by_ref))
                if tags:
                    return out
            elif by_ref is not None:
                rd = str(Reference(by_ref.registry, by_ref.repository, None, by_ref.digest))
                if rd in rec["repo_digests"]:
                    rec["repo_digests"].remove(rd)
                out.append(f"Untagged: {by_ref.familiar()}")
                if tags and not force:
                    return out
            elif len(tags) > 1 and not force:
                raise Conflict(
                    f"unable to delete {hex_of(image_id)[:12]} (must be forced) - "
                    "image is referenced in multiple repositories"
                )
            for t in tags:
                del state["tags"][t]
                out.append(f"Untagged: {parse_reference(t).familiar()}")
            for d in rec.get("repo_digests", []):
                out.append(f"Untagged: {parse_reference(d).familiar()}")
            del state["images"][image_id]
            out.append(f"Deleted: {image_id}")
        self.collect_garbage()
        return out

    def prune(self, keep: set[str], *, dangling_only: bool = True) -> builtins.list[str]:
        """Delete untagged images (all unused ones if not DANGLING_ONLY).

        KEEP holds the ids of images containers still use.  Returns the
        deleted ids; unreferenced blobs, layers and stale temp files go too.
        """
        deleted: list[str] = []
        with self._state() as state:
            tagged = set(state["tags"].values())
            for image_id in list(state["images"]):
                if image_id in keep or (dangling_only and image_id in tagged):
                    continue
                for t in [t for t, i in state["tags"].items() if i == image_id]:
                    del state["tags"][t]
                del state["images"][image_id]
                deleted.append(image_id)
        self.collect_garbage(clean_tmp=True)
        return deleted

    def forget(self, image_ids: set[str]) -> builtins.list[str]:
        """Delete those of IMAGE_IDS no tag names (build cache images); their blobs and
        layers go unless another image shares them.  Returns the deleted ids."""
        deleted: list[str] = []
        with self._state() as state:
            tagged = set(state["tags"].values())
            for image_id in image_ids:
                if image_id in state["images"] and image_id not in tagged:
                    del state["images"][image_id]
                    deleted.append(image_id)
        self.collect_garbage()
        return deleted

    def collect_garbage(self, *, clean_tmp: bool = False) -> None:
        """Remove blobs and layers no image references.

        Waits for ingests in progress (they hold gc.lock shared).
        """
        with self._flock(self.root / "gc.lock", fcntl.LOCK_EX):
            state = self._snapshot()
            blobs: set[str] = set()
            diff_ids: set[str] = set()
            for image_id, rec in state["images"].items():
                blobs.update((image_id, rec["manifest"]))
                with contextlib.suppress(ImageError, ValueError, KeyError):
                    doc = mt.parse_manifest(self.read_blob(rec["manifest"]), rec["manifest"])
                    blobs.update(layer.digest for layer in doc.layers)
                with contextlib.suppress(ImageError, ValueError):
                    diff_ids.update(mt.diff_ids(json.loads(self.read_blob(image_id))))
            for index in state.get("indexes", []):
                blobs.add(index)
            keep_blobs = {hex_of(b) for b in blobs}
            keep_layers = {hex_of(d) for d in diff_ids}
            for p in self._blobs.iterdir():
                if p.name not in keep_blobs:
                    p.unlink()
            for p in self._layers.iterdir():
                if p.name not in keep_layers:
                    shutil.rmtree(p, ignore_errors=True)
            if clean_tmp:
                for p in self._tmp.iterdir():
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink()

    # -- import --------------------------------------------------------------

    def import_rootfs(
        self,
        source: Path | BinaryIO,
        ref: str | None = None,
        changes: dict[str, Any] | None = None,
        *,
        architecture: str | None = None,
        os_name: str = "linux",
    ) -> Image:
        """Make a one-layer image from a rootfs tarball (plain, gzip or zstd).

        CHANGES holds OCI ``config`` fields (``Cmd``, ``Env``, ``Entrypoint``,
        ...) to set, as ``docker import --change`` does.
        """
        tag = parse_reference(ref, self.config.default) if ref else None
        if tag is not None and tag.digest is not None:
            raise InvalidArgument(f"cannot import to a digest reference: {ref}")
        with self.ingesting():
            if isinstance(source, Path):
                try:
                    with open(source, "rb") as f:
                        blob, size = self.spool_blob(f)
                except FileNotFoundError:
                    raise InvalidArgument(f"no such file: {source}") from None
            else:
                blob, size = self.spool_blob(source)
            with open(self.blob_path(blob), "rb") as f:
                media = mt.layer_media_type(_head(f))
            diff_id = self.unpack_layer(blob, None, f"imported layer {blob}")
            # Sub-second, as docker's: the before/since filters order images by it.
            now = clock.now()
            cfg: dict[str, Any] = {
                "architecture": architecture or host_arch(),
                "os": os_name,
                "created": now,
                "config": dict(changes or {}),
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": now, "created_by": "sdcontainer import",
                             "comment": "Imported from tarball"}],
            }
            ImageConfig.from_oci(cfg["config"])  # refuse malformed changes early
            cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
            cfg_digest = self.put_blob(cfg_bytes)
            manifest = mt.build_manifest(
                mt.Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
                [mt.Descriptor(media, blob, size)],
            )
            return self.add_image(manifest, tags=[tag] if tag else [])


    # -- built images (images/build, engine/build.py, engine/commit.py) -----------

    def add_layer(self, tar: BinaryIO) -> tuple[mt.Descriptor, str]:
        """Store the uncompressed layer tar TAR and unpack it; its descriptor and diff_id.

        Call inside `ingesting` and add the image before leaving it, or garbage
        collection may take the layer.
        """
        blob, size = self.spool_blob(tar)
        diff_id = self.unpack_layer(blob, blob, f"layer {blob}")
        return mt.Descriptor(mt.OCI_LAYER, blob, size), diff_id

    def layer_descriptors(self, image: Image) -> builtins.list[mt.Descriptor]:
        """The manifest's layer descriptors of IMAGE, lowest first."""
        if not image.manifest_digest:
            return []
        doc = mt.parse_manifest(self.read_blob(image.manifest_digest), image.manifest_digest)
        return builtins.list(doc.layers)

    def add_config_image(self, cfg: dict[str, Any], layers: Sequence[mt.Descriptor], *,
                         tags: Sequence[Reference] = (), hidden: bool = False,
                         parent: str = "") -> Image:
        """Store image config CFG over LAYERS (all stored and unpacked) and record it
        (PARENT: the image it was made from, see add_image)."""
        cfg_bytes = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
        cfg_digest = self.put_blob(cfg_bytes)
        manifest = mt.build_manifest(
            mt.Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_bytes)), builtins.list(layers))
        return self.add_image(manifest, tags=tags, hidden=hidden, parent=parent)

    # -- registry and archives (in their own modules) ----------------------------


def _head(f: IO[bytes]) -> bytes:
    """The first bytes of F, to tell compressed layers from plain tars."""
    head = f.read(4)
    f.seek(0)
    return head
