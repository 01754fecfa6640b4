"""The docker CLI's configuration file, read as docker reads it, so that one setting
serves both CLIs: $DOCKER_CONFIG/config.json, by default ~/.docker/config.json.

Two things come from it: `detachKeys` (the default detach sequence of attached
sessions) and a registry's credentials (`auths`, or a credential helper named by
`credHelpers`/`credsStore`), which go to the daemon in an X-Registry-Auth header.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# docker's key for Docker Hub in config.json (registry.IndexServer).
HUB_KEY = "https://index.docker.io/v1/"
HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class DockerConfig:
    """What the CLI uses of config.json."""

    path: str
    detach_keys: str | None = None
    auths: dict[str, dict[str, str]] = field(default_factory=dict)
    creds_store: str | None = None
    cred_helpers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Credentials:
    """A registry's credentials as docker's AuthConfig carries them."""

    serveraddress: str
    username: str = ""
    password: str = ""
    identitytoken: str = ""


def config_path() -> str:
    """Where docker's CLI keeps config.json: $DOCKER_CONFIG, else ~/.docker."""
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _strings(value: Any) -> dict[str, str]:
    return {str(k): v for k, v in value.items() if isinstance(v, str)} \
        if isinstance(value, dict) else {}


def load(path: str | None = None) -> DockerConfig:
    """config.json at PATH (default: docker's place); empty when there is none.  A file
    that cannot be read or parsed is a warning, as docker's CLI makes it, not an error."""
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return DockerConfig(path)
    except OSError as e:
        print(f"WARNING: Error loading config file: {path}: {e.strerror}", file=sys.stderr)
        return DockerConfig(path)
    import json

    try:
        data = json.loads(raw) if raw.strip() else {}
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        print(f"WARNING: Error loading config file: {path}: {e}", file=sys.stderr)
        return DockerConfig(path)
    auths = data.get("auths")
    keys = data.get("detachKeys")
    return DockerConfig(
        path, detach_keys=keys if isinstance(keys, str) and keys else None,
        auths={str(k): _strings(v) for k, v in auths.items()} if isinstance(auths, dict)
        else {},
        creds_store=data.get("credsStore") if isinstance(data.get("credsStore"), str) else None,
        cred_helpers=_strings(data.get("credHelpers")))


def hostname(key: str) -> str:
    """An auths key as docker compares them (ConvertToHostname): no scheme, no path."""
    for scheme in ("https://", "http://"):
        key = key.removeprefix(scheme)
    return key.split("/", 1)[0]


def registry_of(ref: str) -> str | None:
    """The registry REF names explicitly (docker's rule: a first path component with a
    dot or a colon, or localhost); None for a short name, which the daemon resolves."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _helper(helper: str, server: str) -> Credentials | None:
    """docker-credential-HELPER get, as docker runs it; None if it has nothing."""
    import json
    import subprocess

    try:
        r = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    try:
        answer = json.loads(r.stdout)
    except ValueError:
        return None
    if not isinstance(answer, dict) or not answer.get("Secret"):
        return None
    user, secret = str(answer.get("Username") or ""), str(answer["Secret"])
    if user == "<token>":
        return Credentials(server, identitytoken=secret)
    return Credentials(server, username=user, password=secret)


def credentials(config: DockerConfig, registry: str) -> Credentials | None:
    """REGISTRY's credentials in CONFIG: its credential helper, else its `auths` entry."""
    import base64
    import binascii

    hub = registry in HUB_NAMES
    server = HUB_KEY if hub else registry
    helper = config.cred_helpers.get(server) or config.creds_store
    if helper:
        return _helper(helper, server)
    for key, entry in config.auths.items():
        if (key != HUB_KEY or not hub) and hostname(key) != registry:
            continue
        if entry.get("identitytoken"):
            return Credentials(server, identitytoken=entry["identitytoken"])
        try:
            user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, password = user or entry.get("username", ""), password or entry.get(
            "password", "")
        return Credentials(server, username=user, password=password) if user else None
    return None


def registry_auth_header(ref: str, config: DockerConfig | None = None) -> dict[str, str]:
    """{"X-Registry-Auth": ...} for REF when config.json holds credentials for the
    registry REF names, as docker's CLI sends them; else {} and the daemon uses the
    credentials stored by `sdcontainer login`."""
    registry = registry_of(ref)
    if registry is None:
        return {}
    creds = credentials(config or load(), registry)
    if creds is None:
        return {}
    import base64
    import dataclasses
    import json

    doc = {k: v for k, v in dataclasses.asdict(creds).items() if v}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()}
