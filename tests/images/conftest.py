"""Fixtures for the image tests.

The checkout is not installed into the venv, so make ``import sdcontainer``
work from the repository root, whichever directory pytest was started in.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import shutil  # noqa: E402 - after the sys.path fix above
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"


@dataclass
class Registry:
    """A docker-registry instance the tests started on loopback."""

    host: str  # 127.0.0.1:PORT
    storage: Path
    proc: subprocess.Popen[bytes]
    user: str | None = None
    password: str | None = None

    def blob_data(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line; glibc's libxcrypt does bcrypt, so no extra package is needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # stdlib until 3.13; Debian 12 ships 3.11

    salt = "$2b$05$" + "abcdefghijklmnopqrstuu"
    hashed = crypt.crypt(password, salt)
    if not hashed or not hashed.startswith("$2b$"):
        pytest.skip("libcrypt has no bcrypt")
    return f"{user}:{hashed}\n"


def _start_registry(base: Path, htpasswd: tuple[str, str] | None) -> Registry:
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed")
    base.mkdir(parents=True)
    storage = base / "storage"
    port = _free_port()
    auth = ""
    if htpasswd:
        (base / "htpasswd").write_text(_bcrypt_line(*htpasswd))
        auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {base / 'htpasswd'}\n"
    (base / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        + auth
    )
    log = open(base / "registry.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(base / "config.yml")],
                            stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            break
        except urllib.error.HTTPError:
            break  # 401 with auth on: it is up
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"docker-registry did not start: {(base / 'registry.log').read_text()}"
                ) from None
            time.sleep(0.05)
    user, password = htpasswd or (None, None)
    return Registry(f"127.0.0.1:{port}", storage, proc, user, password)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry on 127.0.0.1."""
    reg = _start_registry(tmp_path_factory.mktemp("registry") / "anon", None)
    yield reg
    reg.proc.terminate()
    reg.proc.wait(10)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry on 127.0.0.1 that wants htpasswd basic auth."""
    reg = _start_registry(tmp_path_factory.mktemp("registry") / "auth", ("tester", "s3cret!"))
    yield reg
    reg.proc.terminate()
    reg.proc.wait(10)


def skopeo(*args: str) -> None:
    """Run skopeo without a signature policy file (the box may lack one)."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
