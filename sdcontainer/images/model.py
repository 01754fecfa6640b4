"""The image types the rest of sdcontainer sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdcontainer.errors import ImageError


def _str_list(value: object, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        # Docker accepts a bare string Cmd/Entrypoint in some old configs: shell form.
        return ["/bin/sh", "-c", value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"image config: {key} must be a list of strings")
    return list(value)


@dataclass(frozen=True)
class ImageConfig:
    """The runtime defaults an image carries (the OCI config's ``config`` object)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    stop_signal: str | None = None
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    healthcheck: dict[str, Any] | None = None
    """Kept in docker's raw shape: Test, Interval, Timeout, StartPeriod, Retries."""

    @classmethod
    def from_oci(cls, config: dict[str, Any] | None) -> ImageConfig:
        """Build from the ``config`` object of an OCI/docker image config (may be None)."""
        c = config or {}
        if not isinstance(c, dict):
            raise ImageError("image config: config must be an object")
        labels = c.get("Labels") or {}
        if not isinstance(labels, dict):
            raise ImageError("image config: Labels must be an object")
        ports = c.get("ExposedPorts") or {}
        if not isinstance(ports, dict):
            raise ImageError("image config: ExposedPorts must be an object")
        health = c.get("Healthcheck")
        stop = c.get("StopSignal")
        return cls(
            entrypoint=_str_list(c.get("Entrypoint"), "Entrypoint"),
            cmd=_str_list(c.get("Cmd"), "Cmd"),
            env=_str_list(c.get("Env"), "Env") or [],
            working_dir=str(c.get("WorkingDir") or ""),
            user=str(c.get("User") or ""),
            stop_signal=str(stop) if stop else None,
            exposed_ports=sorted(str(p) for p in ports),
            labels={str(k): str(v) for k, v in labels.items()},
            healthcheck=health if isinstance(health, dict) else None,
        )

    def to_oci(self) -> dict[str, Any]:
        """The OCI ``config`` object for this configuration (empty fields left out)."""
        out: dict[str, Any] = {}
        if self.entrypoint is not None:
            out["Entrypoint"] = self.entrypoint
        if self.cmd is not None:
            out["Cmd"] = self.cmd
        if self.env:
            out["Env"] = self.env
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.labels:
            out["Labels"] = self.labels
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck
        return out


@dataclass(frozen=True)
class Image:
    """An image in the store."""

    id: str
    """``sha256:<hex>`` of the image config blob."""
    repo_tags: list[str]
    repo_digests: list[str]
    layers: list[Path]
    """Unpacked layer directories, lowest first (overlayfs wants them reversed)."""
    config: ImageConfig
    created: str
    size: int
    architecture: str
    os: str
    raw_config: dict[str, Any]
    manifest_digest: str = ""
    """Digest of the manifest this image was stored with."""
    parent: str = ""
    """The local image this one was committed or built from ("" if none or removed)."""

    @property
    def short_id(self) -> str:
        """The 12-hex id docker prints."""
        return self.id.split(":", 1)[1][:12]
