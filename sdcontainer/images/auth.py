"""Registry credentials: ``login``, ``logout`` and lookup.

They live in ``STATE_DIR/auth.json`` (``/var/lib/sdcontainer/auth.json``), mode
0600, in docker's ``{"auths": {"registry": {"auth": base64("user:pass")}}}``
shape.  State rather than /etc: they are written by the daemon at run time, not
by the administrator, and must not be world-readable like configuration.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from sdcontainer import paths
from sdcontainer.errors import ImageError, InvalidArgument
from sdcontainer.images.config import RegistriesConfig, load_config
from sdcontainer.images.reference import DOCKER_HUB
from sdcontainer.images.registry import RegistryClient
from sdcontainer.util.fileio import write_json_atomic


def default_auth_file() -> Path:
    """Where credentials are stored."""
    return paths.STATE_DIR / "auth.json"


def _key(registry: str) -> str:
    return DOCKER_HUB if registry in ("index.docker.io", "registry-1.docker.io") else registry


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        with open(path, "rb") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ImageError(f"{path}: not valid JSON: {e}") from None
    auths = doc.get("auths", {}) if isinstance(doc, dict) else {}
    return auths if isinstance(auths, dict) else {}


def _write(path: Path, auths: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_json_atomic(path, {"auths": auths}, sort_keys=True)  # mode 0600

@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def credentials_for(registry: str, auth_file: Path | None = None) -> tuple[str, str] | None:
    """The stored (username, password) for REGISTRY, if any."""
    entry = _read(auth_file or default_auth_file()).get(_key(registry))
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
        return None
    try:
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def login(registry: str, username: str, password: str, *, auth_file: Path | None = None,
          config: RegistriesConfig | None = None) -> None:
    """Check the credentials against REGISTRY, then store them (0600)."""
    if not username or ":" in username:
        raise InvalidArgument("username must be non-empty and contain no ':'")
    client = RegistryClient(registry, config=config or load_config(),
                            credentials=(username, password))
    client.ping()
    path = auth_file or default_auth_file()
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    with _locked(path):
        auths = _read(path)
        auths[_key(registry)] = {"auth": raw}
        _write(path, auths)


def logout(registry: str, *, auth_file: Path | None = None) -> bool:
    """Forget REGISTRY's credentials; False if there were none."""
    path = auth_file or default_auth_file()
    with _locked(path):
        auths = _read(path)
        if auths.pop(_key(registry), None) is None:
            return False
        _write(path, auths)
    return True
