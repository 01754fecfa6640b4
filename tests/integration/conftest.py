"""Fixtures for the end-to-end tests: a real sdcontainerd under the box's systemd."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(os.environ.get("SDCONTAINER_BIN", REPO / ".venv" / "bin"))
SOCKET = "/run/sdcontainer/sdcontainer.sock"

pytestmark = pytest.mark.box


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(str(Path(__file__).parent)):
            item.add_marker(pytest.mark.box)


def sh(*argv: str, check: bool = True, timeout: float = 60, input: bytes | None = None
       ) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=check,
                          timeout=timeout, input=input.decode() if input else None)


def sdc(*args: str, check: bool = False, timeout: float = 60,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the sdcontainer CLI."""
    return subprocess.run([str(VENV_BIN / "sdcontainer"), *args], capture_output=True, text=True,
                          check=check, timeout=timeout, input=input)


def systemctl(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run systemctl."""
    return sh("systemctl", *args, check=check)


def unit_property(unit: str, prop: str) -> str:
    """systemctl show -p PROP --value UNIT."""
    return sh("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def wait_for(predicate, timeout: float = 10, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll PREDICATE until true or TIMEOUT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def install_units() -> None:
    """Our units in /etc/systemd/system, ExecStart pointing at this checkout's venv."""
    sh(str(REPO / "tools" / "install-units"), str(VENV_BIN))


@pytest.fixture(scope="session")
def daemon() -> Iterator[None]:
    """sdcontainerd running as a systemd service."""
    install_units()
    systemctl("start", "sdcontainerd.service", check=True)
    assert wait_for(lambda: os.path.exists(SOCKET))
    yield
    systemctl("stop", "sdcontainerd.service")


def busybox_rootfs(dest: Path) -> Path:
    """A rootfs tarball made from Debian's busybox-static (tools/busybox-rootfs)."""
    tar = dest / "busybox-rootfs.tar"
    sh(str(REPO / "tools" / "busybox-rootfs"), str(tar))
    return tar


@pytest.fixture(scope="session")
def busybox(daemon: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image 'busybox', imported through the CLI."""
    tar = busybox_rootfs(tmp_path_factory.mktemp("busybox"))
    r = sdc("import", str(tar), "busybox", check=False)
    assert r.returncode == 0, r.stderr
    return "busybox"


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh container name, removed (forcibly) after the test."""
    n = f"t-{uuid.uuid4().hex[:8]}"
    yield n
    sdc("rm", "-f", n)
