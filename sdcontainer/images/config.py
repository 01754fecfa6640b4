"""The ``[registries]`` section of sdcontainer.toml.

    [registries]
    default = "docker.io"                 # registry for short names like "alpine"
    insecure = ["localhost", "127.0.0.1"] # may be reached over plain HTTP
    [registries.mirrors]
    "docker.io" = ["mirror.example:5000"] # tried in order before the registry itself

Short names resolve to the one default registry; there is no search list, so a
name never silently resolves to a different registry (podman's short-name rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sdcontainer import paths
from sdcontainer.errors import InvalidArgument
from sdcontainer.util.tomlsection import read_section

DEFAULT_INSECURE = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class RegistriesConfig:
    """Which registry short names use, and how registries are reached."""

    default: str = "docker.io"
    insecure: tuple[str, ...] = DEFAULT_INSECURE
    mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def is_insecure(self, host: str) -> bool:
        """True if HOST (``name`` or ``name:port``) may be reached over plain HTTP."""
        if host in self.insecure:
            return True
        bare = _strip_port(host)
        return bare in self.insecure

    def mirrors_for(self, registry: str) -> tuple[str, ...]:
        """Mirrors to try, in order, before REGISTRY itself."""
        return self.mirrors.get(registry, ())


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _str_list(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"registries.{key} must be a list of strings")
    return tuple(value)


def load_config(path: Path | None = None) -> RegistriesConfig:
    """Read the ``[registries]`` section of PATH (default paths.CONFIG_FILE).

    A missing file or section gives the defaults.
    """
    path = path or paths.CONFIG_FILE
    section = read_section(path, "registries")
    default = section.get("default", "docker.io")
    if not isinstance(default, str) or not default:
        raise InvalidArgument(f"{path}: registries.default must be a host name")
    insecure = _str_list(section.get("insecure", list(DEFAULT_INSECURE)), "insecure")
    raw_mirrors = section.get("mirrors", {})
    if not isinstance(raw_mirrors, dict):
        raise InvalidArgument(f"{path}: registries.mirrors must be a table")
    mirrors = {k: _str_list(v, f"mirrors.{k}") for k, v in raw_mirrors.items()}
    return RegistriesConfig(default=default, insecure=insecure, mirrors=mirrors)
