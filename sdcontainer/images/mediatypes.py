"""Manifests, indexes and descriptors: parsing untrusted JSON into checked types.

Both Docker schema2 and OCI media types are accepted.  A document that has both
``manifests`` and ``layers`` is refused, as is one whose ``mediaType`` disagrees
with what the caller expected (CVE-2021-41190: a document must not be readable
as two different things).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sdcontainer.errors import ImageError
from sdcontainer.images.digest import check_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
LAYER_TYPES = (DOCKER_LAYER, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
               "application/vnd.docker.image.rootfs.diff.tar")
FOREIGN_TYPES = (DOCKER_FOREIGN, *OCI_NONDIST)
MAX_MANIFEST = 4 << 20
MAX_CONFIG = 16 << 20


@dataclass(frozen=True)
class Descriptor:
    """A typed pointer to a blob."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The OCI JSON form."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config and its layers, lowest first."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass(frozen=True)
class Index:
    """A manifest list / image index."""

    media_type: str
    manifests: list[Descriptor]


def _descriptor(d: object, what: str) -> Descriptor:
    if not isinstance(d, dict):
        raise ImageError(f"{what}: descriptor is not an object")
    media = d.get("mediaType", "")
    size = d.get("size")
    if not isinstance(media, str) or not isinstance(size, int) or size < 0:
        raise ImageError(f"{what}: descriptor has a bad mediaType or size")
    digest = d.get("digest")
    try:
        check_digest(digest, f"{what} digest")
    except Exception as e:
        raise ImageError(f"{what}: {e}") from None
    assert isinstance(digest, str)
    urls = d.get("urls") or []
    plat = d.get("platform")
    ann = d.get("annotations") or {}
    return Descriptor(media, digest, size, plat if isinstance(plat, dict) else None,
                      tuple(u for u in urls if isinstance(u, str)),
                      {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {})


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{what}: not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: not a JSON object")
    if "manifests" in doc and "layers" in doc:
        raise ImageError(f"{what}: ambiguous document with both manifests and layers")
    return doc


def parse_document(data: bytes, what: str, content_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index; CONTENT_TYPE, if known, must agree with it."""
    doc = _load(data, what)
    media = doc.get("mediaType")
    if media is not None and not isinstance(media, str):
        raise ImageError(f"{what}: mediaType is not a string")
    ct = (content_type or "").split(";", 1)[0].strip()
    if media and ct and ct not in ("application/json", "application/octet-stream") and ct != media:
        raise ImageError(f"{what}: mediaType {media} disagrees with Content-Type {ct}")
    kind = media or ct
    if "manifests" in doc:
        if kind and kind not in INDEX_TYPES and kind != "application/json":
            raise ImageError(f"{what}: index with mediaType {kind}")
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ImageError(f"{what}: manifests is not a list")
        return Index(kind or OCI_INDEX, [_descriptor(m, what) for m in entries])
    if doc.get("schemaVersion") == 1:
        raise ImageError(f"{what}: Docker schema 1 manifests are not supported")
    if kind and kind not in MANIFEST_TYPES and kind != "application/json":
        raise ImageError(f"{what}: unsupported manifest type {kind}")
    if "config" not in doc or not isinstance(doc.get("layers"), list):
        raise ImageError(f"{what}: manifest lacks config or layers")
    return Manifest(kind or OCI_MANIFEST, _descriptor(doc["config"], what),
                    [_descriptor(layer, what) for layer in doc["layers"]])


def parse_manifest(data: bytes, what: str, content_type: str | None = None) -> Manifest:
    """Parse DATA, which must be an image manifest (not an index)."""
    doc = parse_document(data, what, content_type)
    if not isinstance(doc, Manifest):
        raise ImageError(f"{what}: expected an image manifest, got an index")
    return doc


def diff_ids(config: object) -> list[str]:
    """The checked rootfs.diff_ids of an image config, lowest layer first."""
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        raise ImageError("image config: rootfs.diff_ids missing")
    return [check_digest(d, "diff_id") for d in ids]


def layer_media_type(head: bytes) -> str:
    """The OCI layer media type for a blob starting with HEAD."""
    if head.startswith(b"\x1f\x8b"):
        return OCI_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return OCI_LAYER_ZSTD
    return OCI_LAYER


def build_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """An OCI image manifest for CONFIG and LAYERS."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return json.dumps(doc, sort_keys=True).encode()


def platform_matches(plat: dict[str, Any] | None, os_name: str, arch: str,
                     variant: str | None) -> bool:
    """True if an index entry's PLATFORM is os/arch[/variant]."""
    if not plat:
        return False
    if plat.get("os") != os_name or plat.get("architecture") != arch:
        return False
    return variant is None or plat.get("variant") in (None, variant)
