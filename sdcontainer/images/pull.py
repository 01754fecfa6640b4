"""Pulling an image from a registry into the store.

Order of work: manifest (by tag or digest; an index is resolved to one
platform), config, then every layer blob streamed into tmp/ and verified
against its digest, then layers unpacked and checked against the config's
diff_ids, and only then the image recorded.  Any failure leaves no new image
and no partial blob; verified blobs left over are collected with the store's
garbage.
"""

from __future__ import annotations

import json
import logging
import platform as _platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sdcontainer.errors import DigestMismatch, ImageError, RegistryError
from sdcontainer.images import mediatypes as mt
from sdcontainer.images.auth import credentials_for
from sdcontainer.images.digest import is_digest, sha256_digest
from sdcontainer.images.model import Image
from sdcontainer.images.reference import Reference, parse_reference
from sdcontainer.images.registry import RegistryClient
from sdcontainer.images.store import ImageStore, host_arch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One progress report, shaped after docker's pull output."""

    id: str
    """Short digest of the layer (or the reference for whole-image events)."""
    status: str
    current: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]


def parse_platform(value: str | None) -> tuple[str, str, str | None]:
    """``os/arch[/variant]`` (default: this host) as a tuple."""
    if not value:
        variant = "v8" if host_arch() == "arm64" else None
        return "linux", host_arch(), variant
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"invalid platform {value!r}: want os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _check_body(body: bytes, digest: str, what: str) -> None:
    got = sha256_digest(body)
    if got != digest:
        raise DigestMismatch(f"{what}: content hashes to {got}, expected {digest}")


class _Counter:
    """Reports download progress while a blob streams through."""

    def __init__(self, src: object, report: Callable[[int], None]) -> None:
        self._src = src
        self._report = report
        self.n = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._src.read(n)  # type: ignore[attr-defined]
        self.n += len(data)
        self._report(self.n)
        return data


def pull(
    store: ImageStore,
    ref: str,
    *,
    platform: str | None = None,
    progress: ProgressFn | None = None,
    auth_file: Path | None = None,
    credentials: tuple[str, str] | None = None,
) -> Image:
    """Fetch REF into STORE and return the image.

    Mirrors configured for the registry are tried first, then the registry.
    CREDENTIALS (a request's X-Registry-Auth) go to the registry instead of the
    ones kept by `login`.
    """
    report = progress or (lambda p: None)
    r = parse_reference(ref, store.config.default)
    want_os, want_arch, want_variant = parse_platform(platform)
    endpoints = [*store.config.mirrors_for(r.registry), r.registry]
    errors: list[str] = []
    for endpoint in endpoints:
        given = credentials if credentials and endpoint == r.registry else None
        client = RegistryClient(endpoint, config=store.config,
                                credentials=given or credentials_for(endpoint, auth_file))
        try:
            try:
                return _pull_from(store, client, r.repository, r,
                                  (want_os, want_arch, want_variant), report)
            except BaseException:
                # Verified blobs of a failed pull are not worth keeping: leave the
                # store as it was.
                store.collect_garbage()
                raise
        except RegistryError as e:
            if endpoint == r.registry:
                if errors:
                    raise RegistryError(f"{e} (mirrors failed too: {'; '.join(errors)})") from None
                raise
            logger.warning("mirror %s failed for %s: %s", endpoint, ref, e)
            errors.append(str(e))
    raise AssertionError("unreachable")


def _pull_from(store: ImageStore, client: RegistryClient, repo: str, r: Reference,
               plat: tuple[str, str, str | None], report: ProgressFn) -> Image:
    what = str(r)
    reference = r.digest or r.tag or "latest"
    if r.digest is not None and not is_digest(r.digest):
        raise ImageError(f"{what}: only sha256 digests are supported")
    report(Progress(reference, "Pulling from " + r.familiar_name()))
    body, ctype = client.get_manifest(repo, reference)
    top_digest = sha256_digest(body)
    if r.digest is not None:
        _check_body(body, r.digest, f"manifest {what}")
    doc = mt.parse_document(body, f"manifest {what}", ctype)
    if isinstance(doc, mt.Index):
        chosen = _choose(doc, plat, what)
        body, ctype = client.get_manifest(repo, chosen.digest, chosen.size)
        _check_body(body, chosen.digest, f"manifest {chosen.digest}")
        doc = mt.parse_document(body, f"manifest {chosen.digest}", ctype)
        if not isinstance(doc, mt.Manifest):
            raise ImageError(f"{what}: index entry {chosen.digest} is not an image manifest")
        if chosen.media_type and doc.media_type != chosen.media_type:
            raise ImageError(
                f"manifest {chosen.digest}: mediaType {doc.media_type} disagrees with "
                f"its index entry ({chosen.media_type})"
            )
    manifest = doc
    if manifest.config.size > mt.MAX_CONFIG:
        raise ImageError(f"{what}: config {manifest.config.digest} is too large")

    with store.ingesting():
        _fetch(store, client, repo, manifest.config, report, quiet=True)
        cfg = json.loads(store.read_blob(manifest.config.digest, mt.MAX_CONFIG))
        diff_ids = mt.diff_ids(cfg)
        if len(diff_ids) != len(manifest.layers):
            raise ImageError(
                f"{what}: manifest has {len(manifest.layers)} layers, config {len(diff_ids)}"
            )
        for layer in manifest.layers:
            if layer.media_type not in mt.LAYER_TYPES and layer.media_type not in mt.FOREIGN_TYPES:
                raise ImageError(f"{what}: layer {layer.digest}: unsupported media type "
                                 f"{layer.media_type}")
            _fetch(store, client, repo, layer, report)
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
            short = layer.digest[7:19]
            report(Progress(short, "Extracting", 0, layer.size))
            store.unpack_layer(layer.digest, diff_id, f"layer {layer.digest}")
            report(Progress(short, "Pull complete"))
        tags = [r] if r.digest is None else []
        repo_digest = f"{r.name}@{top_digest}"
        image = store.add_image(body, tags=tags, repo_digest=repo_digest)
    report(Progress(reference, f"Digest: {top_digest}"))
    return image


def _choose(index: mt.Index, plat: tuple[str, str, str | None], what: str) -> mt.Descriptor:
    os_name, arch, variant = plat
    candidates = [d for d in index.manifests
                  if d.media_type in mt.MANIFEST_TYPES or not d.media_type]
    for exact in (True, False):
        for d in candidates:
            if mt.platform_matches(d.platform, os_name, arch, variant if exact else None):
                return d
    have = sorted({f"{(d.platform or {}).get('os')}/{(d.platform or {}).get('architecture')}"
                   for d in candidates})
    raise ImageError(
        f"{what}: no image for {os_name}/{arch}{'/' + variant if variant else ''} "
        f"(available: {', '.join(have) or 'none'})"
    )


def _fetch(store: ImageStore, client: RegistryClient, repo: str, desc: mt.Descriptor,
           report: ProgressFn, *, quiet: bool = False) -> None:
    """Download blob DESC into the store unless present; foreign URLs are never used."""
    short = desc.digest[7:19]
    if store.has_blob(desc.digest):
        if not quiet:
            report(Progress(short, "Already exists"))
        return
    if desc.urls:
        logger.info("blob %s lists foreign URLs; fetching it from the registry only",
                    desc.digest)
    # Parallel pulls of images sharing this blob wait here for the first one's
    # download instead of fetching it again.
    with store.blob_lock(desc.digest):
        if store.has_blob(desc.digest):
            if not quiet:
                report(Progress(short, "Already exists"))
            return
        with client.open_blob(repo, desc.digest) as resp:
            def tick(n: int) -> None:
                if not quiet:
                    report(Progress(short, "Downloading", n, desc.size))

            store.write_blob(_Counter(resp, tick),  # type: ignore[arg-type]
                             desc.digest, desc.size, f"blob {desc.digest}")
    if not quiet:
        report(Progress(short, "Download complete", desc.size, desc.size))


def host_platform() -> str:
    """This host as ``os/arch``."""
    return f"{_platform.system().lower()}/{host_arch()}"


@dataclass(frozen=True)
class Distribution:
    """What GET /distribution/{name}/json tells: the registry's top descriptor and the
    platforms it offers (os, architecture, variant)."""

    media_type: str
    digest: str
    size: int
    platforms: list[tuple[str, str, str]]


def distribution(store: ImageStore, ref: str, credentials: tuple[str, str] | None = None,
                 auth_file: Path | None = None) -> Distribution:
    """Ask REF's registry for its manifest (nothing is stored)."""
    r = parse_reference(ref, store.config.default)
    client = RegistryClient(r.registry, config=store.config,
                            credentials=credentials or credentials_for(r.registry, auth_file))
    body, ctype = client.get_manifest(r.repository, r.digest or r.tag or "latest")
    if r.digest is not None:
        _check_body(body, r.digest, f"manifest {r}")
    doc = mt.parse_document(body, f"manifest {r}", ctype)
    plats: list[tuple[str, str, str]] = []
    if isinstance(doc, mt.Index):
        for d in doc.manifests:
            p = d.platform or {}
            plats.append((str(p.get("os", "")), str(p.get("architecture", "")),
                          str(p.get("variant", ""))))
    else:
        with client.open_blob(r.repository, doc.config.digest) as resp:
            cfg = json.loads(resp.read_capped(mt.MAX_CONFIG, f"config {doc.config.digest}"))
        plats.append((str(cfg.get("os", "")), str(cfg.get("architecture", "")),
                      str(cfg.get("variant", ""))))
    return Distribution(doc.media_type or ctype, sha256_digest(body), len(body), plats)
