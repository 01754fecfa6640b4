"""The TCP API: mutual TLS only, refused at the handshake without a good client cert."""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import VENV_BIN, sdc, sh, systemctl, wait_for

from .apiutil import api, docker, docker_env

PORT = 2376
DROPIN = Path("/etc/systemd/system/sdcontainerd.service.d/zz-api-tls.conf")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tls")
    r = sdc("tls", "init", "--hostname", "127.0.0.1", "--dir", str(d))
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def tls_daemon(daemon: None, busybox: str, certs: Path) -> Iterator[Path]:
    """sdcontainerd serving the socket and tcp://127.0.0.1:2376, set up in its toml [api]."""
    config = certs / "sdcontainer.toml"
    config.write_text(
        "[api]\n"
        f'hosts = ["unix:///run/sdcontainer/sdcontainer.sock", "tcp://127.0.0.1:{PORT}"]\n'
        "tlsverify = true\n"
        f'tlscacert = "{certs}/ca.pem"\ntlscert = "{certs}/server-cert.pem"\n'
        f'tlskey = "{certs}/server-key.pem"\n')
    DROPIN.parent.mkdir(parents=True, exist_ok=True)
    DROPIN.write_text(f"[Service]\nEnvironment=SDCONTAINER_CONFIG={config}\n")
    systemctl("daemon-reload")
    systemctl("restart", "sdcontainerd.service", check=True)
    assert wait_for(lambda: sh("ss", "-Hltn", f"sport = :{PORT}").stdout.strip() != "")
    yield certs
    DROPIN.unlink()
    systemctl("daemon-reload")
    systemctl("restart", "sdcontainerd.service", check=True)


def client_context(cert: Path | None, key: Path | None, ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def request(ctx: ssl.SSLContext, method: str, path: str, body: object = None
            ) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def make_cert(d: Path, cn: str, *, issuer_dir: Path | None, expired: bool = False
              ) -> tuple[Path, Path]:
    """A client certificate: self-signed, or signed by ISSUER_DIR's CA key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    if issuer_dir is None:
        signer, issuer = key, name
    else:
        loaded = serialization.load_pem_private_key((issuer_dir / "ca-key.pem").read_bytes(),
                                                    None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        signer = loaded
        issuer = x509.load_pem_x509_certificate((issuer_dir / "ca.pem").read_bytes()).subject
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) \
        if expired else (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(signer, hashes.SHA256()))
    cp, kp = d / f"{cn}-cert.pem", d / f"{cn}-key.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp


def test_tls_init_files_are_private(certs: Path) -> None:
    for f in ("ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "cert.pem",
              "key.pem"):
        assert (certs / f).stat().st_mode & 0o777 == 0o600, f
    r = sdc("tls", "init", "--hostname", "127.0.0.1", "--dir", str(certs))
    assert r.returncode != 0 and "refusing to overwrite" in r.stderr


def process_memory(pid: int) -> bytes:
    """Every readable private mapping of PID (heap, stacks, anonymous and data pages)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:
                continue
    return b"".join(chunks)


def key_needles(key_file: Path) -> list[bytes]:
    """Pieces of the private key as they could sit in memory: PEM lines, DER windows."""
    import base64

    lines = [line for line in key_file.read_text().splitlines() if not line.startswith("-----")]
    der = base64.b64decode("".join(lines))
    windows = [der[i:i + 24] for i in range(len(der) // 3, len(der) - 24, 24)]
    return [line.encode() for line in lines[1:-1]] + windows + [w[::-1] for w in windows]


def test_tls_key_never_reaches_the_zygote_or_monitors(tls_daemon: Path, busybox: str) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    sdc("run", "-d", "--init", "--name", name, busybox, "sleep", "100", check=True)
    try:
        needles = key_needles(tls_daemon / "server-key.pem")
        main = int(sh("systemctl", "show", "-p", "MainPID", "--value",
                      "sdcontainerd.service").stdout)
        # The method can find the key: the daemon itself holds it, as it must.
        assert any(n in process_memory(main) for n in needles)
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        monitors = [p.parent.name for p in Path("/proc").glob("[0-9]*/comm")
                    if p.read_text().strip() == "sdc-monitor"]
        cid = json.loads(sdc("inspect", name).stdout)[0]["Id"]
        container = Path("/sys/fs/cgroup/systemd/sdcontainer.slice").rglob(
            f"sdcontainer-{name}.scope/cgroup.procs")
        inside = [p for f in container for p in f.read_text().split()]
        assert children and monitors and inside, (children, monitors, inside, cid)
        for pid in {*children, *monitors, *inside}:
            memory = process_memory(int(pid))
            assert not any(n in memory for n in needles), f"the key is in process {pid}"
    finally:
        sdc("rm", "-f", name)


def test_good_client_certificate(tls_daemon: Path) -> None:
    ctx = client_context(tls_daemon / "cert.pem", tls_daemon / "key.pem", tls_daemon / "ca.pem")
    status, body, headers = request(ctx, "GET", "/v1.41/version")
    assert status == 200 and json.loads(body)["ApiVersion"] == "1.43"
    assert not any(h.startswith("access-control-") for h in headers)


def test_docker_cli_over_mutual_tls(tls_daemon: Path, busybox: str) -> None:
    env = docker_env(DOCKER_HOST=f"tcp://127.0.0.1:{PORT}", DOCKER_TLS_VERIFY="1",
                     DOCKER_CERT_PATH=str(tls_daemon))
    r = docker("run", "--rm", busybox, "echo", "over-tls", env=env)
    assert (r.returncode, r.stdout) == (0, "over-tls\n"), r.stderr
    # A hijacked attach: stdin flows in, then the client half-closes (TLS close_notify)
    # and still reads the output.
    r = docker("run", "-i", "--rm", busybox, "sh", "-c", "cat; echo done", env=env,
               input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\ndone\n"), r.stderr


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("kind", ["none", "self-signed", "other-ca", "expired", "tls1.1"])
def test_refused_at_the_handshake(tls_daemon: Path, tmp_path: Path, kind: str) -> None:
    ca = tls_daemon / "ca.pem"
    cert: Path | None
    key: Path | None
    if kind == "none":
        cert = key = None
    elif kind == "self-signed":
        cert, key = make_cert(tmp_path, "mallory", issuer_dir=None)
    elif kind == "other-ca":
        other = tmp_path / "other"
        assert sdc("tls", "init", "--hostname", "127.0.0.1", "--dir", str(other)).returncode == 0
        cert, key = other / "cert.pem", other / "key.pem"
    elif kind == "expired":
        cert, key = make_cert(tmp_path, "old", issuer_dir=tls_daemon, expired=True)
    else:
        cert, key = tls_daemon / "cert.pem", tls_daemon / "key.pem"
    ctx = client_context(cert, key, ca)
    if kind == "tls1.1":
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    victim = f"tls-{uuid.uuid4().hex[:8]}"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(ctx, "POST", f"/v1.41/containers/create?name={victim}",
                {"Image": "busybox", "Cmd": ["true"]})
    status, _, _ = api("GET", f"/v1.41/containers/{victim}/json")
    assert status == 404


def test_docker_cli_without_client_cert_is_refused(tls_daemon: Path) -> None:
    env = docker_env(DOCKER_HOST=f"tcp://127.0.0.1:{PORT}")
    r = docker("--tlsverify", "--tlscacert", str(tls_daemon / "ca.pem"), "ps", env=env)
    assert r.returncode != 0 and "certificate required" in r.stderr


def test_plain_http_to_the_tls_port(tls_daemon: Path) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    conn.request("GET", "/v1.41/containers/json")
    resp = conn.getresponse()
    assert resp.status == 400
    assert resp.read() == b"Client sent an HTTP request to an HTTPS server.\n"


def daemon_alone(*args: str) -> subprocess.CompletedProcess[str]:
    """sdcontainerd run by hand with ARGS (it must refuse before touching anything)."""
    return subprocess.run([str(VENV_BIN / "sdcontainerd"), *args], capture_output=True,
                          text=True, timeout=30)


def test_bad_tls_files_stop_the_daemon(certs: Path) -> None:
    base = ["-H", "tcp://127.0.0.1:2399", "--tlsverify", "--tlscacert", str(certs / "ca.pem")]
    r = daemon_alone(*base, "--tlscert", str(certs / "missing.pem"),
                     "--tlskey", str(certs / "server-key.pem"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"ERROR sdcontainerd: cannot read --tlscert {certs}/missing.pem: no such file"]
    r = daemon_alone(*base, "--tlscert", str(certs / "server-cert.pem"),
                     "--tlskey", str(certs / "key.pem"))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "KEY_VALUES_MISMATCH" in r.stderr


def test_plain_tcp_is_refused_unless_forced(daemon: None) -> None:
    r = daemon_alone("-H", "tcp://127.0.0.1:2399")
    assert r.returncode == 1 and "refusing to serve tcp://127.0.0.1:2399 without TLS" in r.stderr
