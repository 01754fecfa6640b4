"""Fixtures for the CRI tests: the box's sdcontainerd with `[cri] enable = true`, and
gRPC stubs generated from the vendored api.proto (tools/gen-cri-stubs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import busybox, daemon, systemctl, wait_for  # noqa: F401

CRI_SOCKET = "/run/sdcontainer/cri.sock"
DROPIN = Path("/etc/systemd/system/sdcontainerd.service.d/zz-cri.conf")


@dataclass
class Cri:
    """A client of the CRI socket: RuntimeService and ImageService stubs."""

    channel: Any
    runtime: Any
    images: Any

    @classmethod
    def connect(cls) -> Cri:
        import grpc

        from sdcontainer.cri.gen import api_pb2_grpc

        ch = grpc.insecure_channel(f"unix://{CRI_SOCKET}")
        return cls(ch, api_pb2_grpc.RuntimeServiceStub(ch), api_pb2_grpc.ImageServiceStub(ch))

    def close(self) -> None:
        self.channel.close()


def restart_daemon() -> None:
    """systemctl restart sdcontainerd; back once it serves CRI again (Type=notify)."""
    systemctl("restart", "sdcontainerd.service", check=True)
    assert wait_for(lambda: os.path.exists(CRI_SOCKET))


@pytest.fixture(scope="module")
def cri_daemon(daemon: None, busybox: str,  # noqa: F811
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """sdcontainerd serving CRI (configured in its sdcontainer.toml); yields the image."""
    config = tmp_path_factory.mktemp("cri") / "sdcontainer.toml"
    config.write_text("[cri]\nenable = true\n")
    DROPIN.parent.mkdir(parents=True, exist_ok=True)
    DROPIN.write_text(f"[Service]\nEnvironment=SDCONTAINER_CONFIG={config}\n")
    systemctl("daemon-reload")
    try:
        restart_daemon()
        yield busybox
    finally:
        DROPIN.unlink()
        systemctl("daemon-reload")
        systemctl("restart", "sdcontainerd.service", check=True)


@pytest.fixture
def cri(cri_daemon: str) -> Iterator[Cri]:
    """A connected CRI client."""
    client = Cri.connect()
    yield client
    client.close()
