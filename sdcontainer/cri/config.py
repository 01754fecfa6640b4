"""The `[cri]` table of /etc/sdcontainer/sdcontainer.toml: the Kubernetes CRI service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import InvalidArgument
from ..util.tomlsection import read_section


@dataclass(frozen=True)
class CriConfig:
    """CRI settings.

    enable: serve runtime.v1 (off unless asked: it is one more root-equivalent socket).
    socket: where kubelet's --container-runtime-endpoint points.  group: who may use
    the socket besides root; "" means the Docker-compatible socket's group.
    """

    enable: bool = False
    socket: str = str(paths.RUN_DIR / "cri.sock")
    group: str = ""

    def __post_init__(self) -> None:
        if not self.socket.startswith("/"):
            raise InvalidArgument(f"[cri] socket: {self.socket!r} is not an absolute path")

    @classmethod
    def load(cls, path: Path) -> CriConfig:
        """Read the [cri] table of PATH; a missing file or table gives defaults."""
        return cls.from_dict(read_section(path, "cri"))

    @classmethod
    def from_dict(cls, section: dict[str, Any]) -> CriConfig:
        """Build from a parsed [cri] table, checking every key and type."""
        types: dict[str, type] = {"enable": bool, "socket": str, "group": str}
        for key, value in section.items():
            want = types.get(key)
            if want is None:
                raise InvalidArgument(f"[cri]: unknown key {key!r}")
            if not isinstance(value, want):
                raise InvalidArgument(f"[cri] {key}: expected {want.__name__}")
        return cls(**section)
