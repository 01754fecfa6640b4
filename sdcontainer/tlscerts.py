"""`sdcontainer tls init`: a CA, a server and a client certificate for the TCP API.

The layout and names are docker's (`dockerd --tlsverify` and `docker --tlsverify`
read these): ca.pem, server-cert.pem, server-key.pem, cert.pem, key.pem.  Every
file is 0600: the CA key signs client certificates, which are root-equivalent.
Imported only by that command (cryptography is large).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from .errors import InvalidArgument, SdcError

CA_DAYS = 3650
CERT_DAYS = 825


def _write(path: Path, data: bytes) -> None:
    """Create PATH 0600 (never readable by others, not even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _names(hostname: str) -> list[object]:
    from cryptography import x509

    names: list[object] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(
        "127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    try:
        names.insert(0, x509.IPAddress(ipaddress.ip_address(hostname)))
    except ValueError:
        names.insert(0, x509.DNSName(hostname))
    return names


def init(hostname: str, directory: Path, days: int = CERT_DAYS, force: bool = False) -> list[Path]:
    """Make the CA, server and client files in DIRECTORY; the paths written."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hostname:
        raise InvalidArgument("tls init needs --hostname (the name clients connect to)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = {k: directory / k for k in ("ca.pem", "ca-key.pem", "server-cert.pem",
                                         "server-key.pem", "cert.pem", "key.pem")}
    existing = [str(p) for p in files.values() if p.exists()]
    if existing and not force:
        raise SdcError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sdcontainer CA ({hostname})")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, usage: x509.ObjectIdentifier,
             sans: list[object] | None) -> tuple[bytes, bytes]:
        k = key()
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(ca_name).public_key(k.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now)
             .not_valid_after(now + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)  # type: ignore[arg-type]
        cert = b.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(k)

    server_cert, server_key = leaf(hostname, ExtendedKeyUsageOID.SERVER_AUTH, _names(hostname))
    client_cert, client_key = leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    contents = {
        "ca.pem": ca.public_bytes(serialization.Encoding.PEM), "ca-key.pem": pem_key(ca_key),
        "server-cert.pem": server_cert, "server-key.pem": server_key,
        "cert.pem": client_cert, "key.pem": client_key,
    }
    for name, data in contents.items():
        _write(files[name], data)
    return list(files.values())
