"""Push an image from the store to a registry (Docker Registry HTTP API v2).

Each blob (layers, then the config) is asked for with HEAD first and uploaded only if
the registry lacks it, in one monolithic POST + PUT; the manifest goes last, under the
reference's tag.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sdcontainer.errors import InvalidArgument, RegistryError
from sdcontainer.images import mediatypes as mt
from sdcontainer.images.auth import credentials_for
from sdcontainer.images.digest import sha256_digest
from sdcontainer.images.pull import Progress
from sdcontainer.images.reference import parse_reference
from sdcontainer.images.registry import RegistryClient, _error_text
from sdcontainer.images.store import ImageStore

logger = logging.getLogger(__name__)


def push(store: ImageStore, ref: str, *, progress: Callable[[Progress], None] | None = None,
         credentials: tuple[str, str] | None = None,
         auth_file: Path | None = None) -> tuple[str, str, int]:
    """Push image REF (tag "latest" if none); returns (tag, manifest digest, size)."""
    report = progress or (lambda p: None)
    r = parse_reference(ref, store.config.default)
    if r.digest is not None:
        raise InvalidArgument(f"cannot push by digest: {ref}; push a tag")
    tag = r.tag or "latest"
    img = store.resolve(str(r))
    if not img.manifest_digest:
        raise RegistryError(f"{ref}: the store has no manifest for this image")
    body = store.read_blob(img.manifest_digest, mt.MAX_MANIFEST)
    manifest = mt.parse_manifest(body, f"manifest of {ref}")
    client = RegistryClient(r.registry, config=store.config,
                            credentials=credentials or credentials_for(r.registry, auth_file))
    repo = r.repository
    scope = f"repository:{repo}:pull,push"
    report(Progress("", f"The push refers to repository [{r.name}]"))
    for desc in manifest.layers:
        report(Progress(desc.digest[7:19], "Preparing"))
    for desc in [*manifest.layers, manifest.config]:
        short = desc.digest[7:19]
        quiet = desc is manifest.config
        with client.request("HEAD", f"/v2/{repo}/blobs/{desc.digest}", scope) as resp:
            resp.read()
            present = resp.status == 200
        if present:
            if not quiet:
                report(Progress(short, "Layer already exists"))
            continue
        if not quiet:
            report(Progress(short, "Pushing", 0, desc.size))
        _upload(client, store, repo, scope, desc.digest, desc.size)
        if not quiet:
            report(Progress(short, "Pushed"))  # no numbers: docker prints it off a terminal
    with client.request("PUT", f"/v2/{repo}/manifests/{tag}", scope,
                        {"Content-Type": manifest.media_type or mt.DOCKER_MANIFEST,
                         "Content-Length": str(len(body))}, body) as resp:
        answer = resp.read(1 << 16)
        if resp.status not in (200, 201, 202):
            raise RegistryError(f"{r.registry}/{repo}: manifest {tag}: {resp.status} "
                                f"{_error_text(answer)}")
    digest = sha256_digest(body)
    report(Progress("", f"{tag}: digest: {digest} size: {len(body)}"))
    return tag, digest, len(body)


def _upload(client: RegistryClient, store: ImageStore, repo: str, scope: str, digest: str,
            size: int) -> None:
    """Blob DIGEST in one POST (start) and PUT (the bytes, closing the upload)."""
    with client.request("POST", f"/v2/{repo}/blobs/uploads/", scope,
                        {"Content-Length": "0"}, b"") as resp:
        answer = resp.read(1 << 16)
        location = resp.headers.get("Location", "")
        if resp.status != 202 or not location:
            raise RegistryError(f"{client.registry}/{repo}: cannot start an upload: "
                                f"{resp.status} {_error_text(answer)}")
    if location.startswith("/"):
        location = client._base() + location
    location += ("&" if "?" in location else "?") + f"digest={digest}"
    path = store.blob_path(digest)

    def opener() -> BinaryIO:
        return path.open("rb")

    with client.request("PUT", location, scope,
                        {"Content-Type": "application/octet-stream",
                         "Content-Length": str(path.stat().st_size)}, opener) as resp:
        answer = resp.read(1 << 16)
        if resp.status not in (201, 204):
            raise RegistryError(f"{client.registry}/{repo}: blob {digest}: {resp.status} "
                                f"{_error_text(answer)}")
    logger.debug("pushed %s (%d bytes) to %s/%s", digest, size, client.registry, repo)


def local_tags(store: ImageStore, name: str) -> list[str]:
    """NAME:TAG for each tag of repository NAME in the store (what a push with no tag
    sends, as dockerd does), sorted."""
    want = parse_reference(name, store.config.default, default_tag=False)
    if want.tag is not None or want.digest is not None:
        return [name]
    tags = {r.tag for img in store.list() for r in
            (parse_reference(t, store.config.default) for t in img.repo_tags)
            if r.name == want.name and r.tag}
    return [f"{name}:{t}" for t in sorted(t for t in tags if t)]
