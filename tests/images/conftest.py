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


def _start_registry(base: Path, htpasswd: tuple[str, str] | None,
                    auth: str = "") -> Registry:
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry is not installed")
    base.mkdir(parents=True)
    storage = base / "storage"
    port = _free_port()
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


class TokenServer:
    """A bearer-token issuer for docker-registry's ``auth: token`` mode.

    Not a mock of the registry: the real registry verifies every token it
    signs (RS256, certificate in the x5c header, checked against the bundle
    the registry is configured with).  It grants whatever scope is asked and
    records each request so tests can see where credentials went.
    """

    def __init__(self, base: Path) -> None:
        import base64
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.key, self.cert = base / "token.key", base / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                        "-subj", "/CN=sdcontainer-test-token"], check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                import urllib.parse

                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                server.requests.append((self.path, self.headers.get("Authorization")))
                access = []
                for scope in q.get("scope", []):
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
                claims = {"iss": "test-issuer", "sub": "anyone", "aud": q["service"][0],
                          "exp": now + 600, "nbf": now - 10, "iat": now,
                          "jti": str(now) + str(len(server.requests)), "access": access}
                signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
                sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(server.key)],
                                     input=signing.encode(), check=True,
                                     capture_output=True).stdout
                body = json.dumps({"token": f"{signing}.{b64(sig)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry,
                                                                              TokenServer]]:
    """A registry that wants bearer tokens from a realm on 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    base = tmp_path_factory.mktemp("registry") / "token"
    base.mkdir()
    tokens = TokenServer(base)
    auth = ("auth:\n  token:\n"
            f"    realm: http://127.0.0.1:{tokens.port}/token\n"
            "    service: test-registry\n    issuer: test-issuer\n"
            f"    rootcertbundle: {tokens.cert}\n")
    reg = _start_registry(base / "reg", None, auth)
    yield reg, tokens
    reg.proc.terminate()
    reg.proc.wait(10)
    tokens.close()
