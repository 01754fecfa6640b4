"""Digests: validation against the OCI grammar, and hashing while copying.

A digest names a file in the store, so it is validated before it ever becomes a
path: ``sha256:../../x``, uppercase hex or a wrong length would otherwise walk
out of the blob directory (CVE-2024-3727).
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Protocol

from sdcontainer.errors import DigestMismatch, ImageError, InvalidArgument

# OCI image-spec descriptor grammar, restricted to the algorithm we store.
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_ANY_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")

CHUNK = 1 << 20


def is_digest(value: str) -> bool:
    """True if VALUE is a well-formed sha256 digest."""
    return _DIGEST_RE.fullmatch(value) is not None


def check_digest(value: object, what: str = "digest") -> str:
    """Return VALUE if it is a well-formed sha256 digest, else raise.

    Other algorithms that match the OCI grammar are refused as unsupported
    rather than malformed, so the message says which is which.
    """
    if isinstance(value, str) and _DIGEST_RE.fullmatch(value):
        return value
    if isinstance(value, str) and _ANY_DIGEST_RE.fullmatch(value) and not value.startswith(
        "sha256:"
    ):
        raise ImageError(f"{what}: unsupported digest algorithm in {value!r}")
    raise InvalidArgument(f"invalid {what}: {value!r}")


def hex_of(digest: str) -> str:
    """The hex part of a validated sha256 digest."""
    return check_digest(digest)[len("sha256:"):]


def sha256_digest(data: bytes) -> str:
    """The digest of DATA."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def copy_verified(
    src: BinaryIO, dst: Sink, digest: str, size: int | None, what: str
) -> int:
    """Copy SRC to DST, checking the byte count and the sha256 digest on the way.

    At most SIZE + 1 bytes are read, so a server cannot stream forever; a
    mismatch raises DigestMismatch naming WHAT.
    """
    h = hashlib.sha256()
    total = 0
    while True:
        want = CHUNK if size is None else min(CHUNK, size + 1 - total)
        if want <= 0:
            break
        chunk = src.read(want)
        if not chunk:
            break
        total += len(chunk)
        if size is not None and total > size:
            raise DigestMismatch(f"{what}: more than the {size} bytes its descriptor declares")
        h.update(chunk)
        dst.write(chunk)
    if size is not None and total != size:
        raise DigestMismatch(f"{what}: got {total} bytes, descriptor says {size}")
    got = "sha256:" + h.hexdigest()
    if got != digest:
        raise DigestMismatch(f"{what}: content hashes to {got}, expected {digest}")
    return total
