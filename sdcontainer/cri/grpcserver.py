"""The CRI socket: grpc.aio on the daemon's event loop.  Imported only when [cri] is
enabled, and only after the zygote is forked: grpc starts threads of its own."""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import grpc

from ..engine.core import Engine
from ..errors import SdcError
from .config import CriConfig
from .gen import api_pb2_grpc
from .images import ImageService
from .pods import Pods
from .service import RuntimeService

log = logging.getLogger(__name__)


class CriServer:
    """The runtime.v1 RuntimeService and ImageService, served on one unix socket."""

    def __init__(self, server: Any, socket: str, pods: Pods) -> None:
        self.server = server
        self.socket = socket
        self.pods = pods

    @classmethod
    async def start(cls, engine: Engine, config: CriConfig, group: str) -> CriServer:
        """Load the pod records, then serve on config.socket (root:GROUP, 0660)."""
        pods = Pods(engine)
        await pods.load()
        server = grpc.aio.server()
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(RuntimeService(pods), server)
        api_pb2_grpc.add_ImageServiceServicer_to_server(ImageService(engine), server)
        bind(server, config.socket, group)
        await server.start()
        log.info("serving Kubernetes CRI (runtime.v1) on %s", config.socket)
        return cls(server, config.socket, pods)

    async def close(self) -> None:
        """Stop serving: calls in progress get a moment to finish."""
        await self.server.stop(2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)


def bind(server: Any, path: str, group: str) -> None:
    """Bind SERVER to unix socket PATH, root:GROUP 0660 from the moment it has that
    name: grpc binds in a private directory (umask is process-wide, and worker
    threads create files meanwhile), the mode and owner are set there, and a rename
    puts it in place."""
    parent = Path(path).parent
    parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".cri-bind-")
    try:
        staged = os.path.join(tmp, "cri.sock")
        try:
            server.add_insecure_port(f"unix:{staged}")
        except RuntimeError as e:
            raise SdcError(f"cannot listen on {path}: {e}") from None
        os.chmod(staged, 0o660)
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            log.info("group %s does not exist; %s is root-only", group, path)
            gid = 0
        os.chown(staged, 0, gid)
        os.replace(staged, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(tmp, "cri.sock"))
        os.rmdir(tmp)
