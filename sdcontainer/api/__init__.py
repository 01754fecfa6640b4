"""The Docker-compatible REST API."""

from __future__ import annotations

from ..engine.core import Engine
from .archive import ArchiveAPI
from .build import BuildAPI
from .container_ops import ContainerOpsAPI
from .containers import ContainerAPI
from .execs import ExecAPI
from .http import Router, Server
from .system import SystemAPI
from .systemd import SystemdAPI
from .volumes import VolumeAPI


def build_server(engine: Engine, extra: list[object] | None = None) -> Server:
    """The API server for ENGINE, with every endpoint group registered."""
    router = Router()
    for api in (SystemAPI(engine), ContainerAPI(engine), ContainerOpsAPI(engine),
                ExecAPI(engine), SystemdAPI(engine), VolumeAPI(engine),
                ArchiveAPI(engine), BuildAPI(engine), *(extra or [])):
        api.register(router)  # type: ignore[attr-defined]
    return Server(router)
