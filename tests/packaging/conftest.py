"""Fixtures for the packaging tests: release files built once per session.

`packaging/build dist` (what `make dist` runs) builds the sdist, the wheel and
the .deb, checked by lintian, into a scratch directory; every test here uses
that one build.  Installing the .deb needs a box of its own (`make
test-packaging`): the checkout's daemon from tests/integration must not be
installed in the same systemd.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Debian's python3 and tools, not a venv's or pyenv's.
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "DEBIAN_FRONTEND": "noninteractive", "HOME": os.environ.get("HOME", "/root")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(str(Path(__file__).parent)):
            item.add_marker(pytest.mark.box)


def sh(*argv: str, check: bool = True, timeout: float = 120, cwd: str | Path = "/",
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ARGV with Debian's PATH from /, capturing text output."""
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       env={**SYSTEM_ENV, **(env or {})}, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} exited {r.returncode}\nstdout: {r.stdout}\n"
                             f"stderr: {r.stderr}")
    return r


def version() -> str:
    ns: dict[str, str] = {}
    exec((REPO / "sdcontainer" / "__init__.py").read_text(), ns)
    return ns["__version__"]


def deb_name() -> str:
    """The .deb's file name: architecture-specific, since the native monitor is compiled in."""
    arch = sh("dpkg", "--print-architecture").stdout.strip()
    return f"sdcontainer_{version()}_{arch}.deb"


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the sdist, wheel, .deb, SHA256SUMS and MD5SUMS (slow: once)."""
    out = tmp_path_factory.mktemp("dist")
    sh(str(REPO / "packaging" / "build"), "dist", str(out), timeout=900)
    return out


@pytest.fixture(scope="session")
def deb(release: Path) -> Path:
    """The built sdcontainer_VERSION_ARCH.deb."""
    path = release / deb_name()
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def deb_tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb's files, unpacked (dpkg-deb -x)."""
    root = tmp_path_factory.mktemp("debroot")
    sh("dpkg-deb", "-x", str(deb), str(root))
    return root
