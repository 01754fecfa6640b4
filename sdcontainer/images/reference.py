"""Image references, normalized as docker does.

``alpine`` -> ``docker.io/library/alpine:latest``; ``localhost:5000/app`` keeps
its registry; ``name@sha256:...`` pins a manifest.  Short names go to the one
default registry from the configuration, never to a guessed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sdcontainer.errors import InvalidArgument

DOCKER_HUB = "docker.io"

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
# Always fullmatch (a `$` would let "name\n" through) and ASCII: Python's \w also
# takes "é" and "٣", where docker's (Go) \w is [A-Za-z0-9_].
_DOMAIN_RE = re.compile(_DOMAIN)
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_ID_RE = re.compile(r"[a-f0-9]{64}")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A normalized image reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def familiar_name(self) -> str:
        """The name as docker prints it (``alpine`` for docker.io/library/alpine)."""
        if self.registry == DOCKER_HUB:
            repo = self.repository
            return repo[len("library/"):] if repo.startswith("library/") else repo
        return self.name

    def familiar(self) -> str:
        """The whole reference as docker prints it (``alpine:3.19``)."""
        out = self.familiar_name()
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        """This name with TAG and no digest."""
        return Reference(self.registry, self.repository, tag, None)


def is_image_id(value: str) -> bool:
    """True if VALUE is a full 64-hex image id (never a valid repository name)."""
    return _ID_RE.fullmatch(value) is not None


def parse_reference(text: str, default_registry: str = DOCKER_HUB, *,
                    default_tag: bool = True) -> Reference:
    """Parse and normalize TEXT; a missing tag becomes ``latest`` if DEFAULT_TAG.

    Raises InvalidArgument with docker's wording for malformed references.
    """
    if not text or len(text) > 1024:
        raise InvalidArgument(f"invalid reference format: {text!r}")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise InvalidArgument(f"invalid reference format: bad digest in {text!r}")
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidArgument(f"invalid reference format: bad tag in {text!r}")
    if is_image_id(remainder):
        raise InvalidArgument(
            f"invalid repository name ({remainder}), cannot specify 64-byte hexadecimal strings"
        )
    first, sep, rest = remainder.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry, path = first, rest
        if not _DOMAIN_RE.fullmatch(registry):
            raise InvalidArgument(f"invalid reference format: bad registry in {text!r}")
    else:
        registry, path = default_registry, remainder
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if path.lower() != path:
        raise InvalidArgument(
            f"invalid reference format: repository name ({path}) must be lowercase"
        )
    if not _PATH_RE.fullmatch(path):
        raise InvalidArgument(f"invalid reference format: {text!r}")
    if len(f"{registry}/{path}") > _MAX_NAME:
        raise InvalidArgument(f"invalid reference format: repository name longer than {_MAX_NAME}")
    if tag is None and digest is None and default_tag:
        tag = "latest"
    return Reference(registry, path, tag, digest)
