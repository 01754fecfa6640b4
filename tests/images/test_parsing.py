"""References, configuration, manifests and digests: the untrusted-text parsers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sdcontainer.errors import DigestMismatch, ImageError, InvalidArgument
from sdcontainer.images import mediatypes as mt
from sdcontainer.images.config import RegistriesConfig, load_config
from sdcontainer.images.digest import check_digest, copy_verified, sha256_digest
from sdcontainer.images.model import ImageConfig
from sdcontainer.images.reference import parse_reference

H = "a" * 64


@pytest.mark.parametrize(("text", "full", "familiar"), [
    ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
    ("alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19"),
    ("team/app", "docker.io/team/app:latest", "team/app:latest"),
    ("index.docker.io/library/x:1", "docker.io/library/x:1", "x:1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/team/app:1.2", "localhost:5000/team/app:1.2", "localhost:5000/team/app:1.2"),
    ("quay.io/a/b/c:t-1", "quay.io/a/b/c:t-1", "quay.io/a/b/c:t-1"),
    (f"app@sha256:{H}", f"docker.io/library/app@sha256:{H}", f"app@sha256:{H}"),
    (f"[::1]:5000/x:y@sha256:{H}", f"[::1]:5000/x:y@sha256:{H}", f"[::1]:5000/x:y@sha256:{H}"),
])
def test_reference_normalization(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full and ref.familiar() == familiar


@pytest.mark.parametrize("bad", ["", "UPPER", "a//b", "a:", ":t", "a@sha256:zz", "-a", "a/-b",
                                 H, "a:" + "t" * 129, "a b"])
def test_reference_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_reference(bad)


def test_short_names_use_the_configured_default() -> None:
    ref = parse_reference("app", "registry.example:5000")
    assert str(ref) == "registry.example:5000/app:latest"


def test_config_file(tmp_path: Path) -> None:
    f = tmp_path / "sdcontainer.toml"
    assert load_config(f) == RegistriesConfig()
    f.write_text('[registries]\ndefault = "reg.example"\ninsecure = ["10.0.0.1:5000"]\n'
                 '[registries.mirrors]\n"docker.io" = ["mirror.example"]\n')
    cfg = load_config(f)
    assert cfg.default == "reg.example"
    assert cfg.is_insecure("10.0.0.1:5000") and not cfg.is_insecure("localhost")
    assert cfg.mirrors_for("docker.io") == ("mirror.example",)
    f.write_text("[registries]\ninsecure = 3\n")
    with pytest.raises(InvalidArgument):
        load_config(f)


def test_default_insecure_is_loopback_only() -> None:
    cfg = RegistriesConfig()
    assert cfg.is_insecure("localhost:5000") and cfg.is_insecure("127.0.0.1:1")
    assert not cfg.is_insecure("registry.example") and not cfg.is_insecure("docker.io")


def _manifest(**extra: object) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": {"mediaType": mt.OCI_CONFIG, "digest": f"sha256:{H}", "size": 2},
           "layers": [], **extra}
    return json.dumps(doc).encode()


def test_ambiguous_document_refused() -> None:
    with pytest.raises(ImageError, match="both manifests and layers"):
        mt.parse_document(_manifest(manifests=[]), "m")


def test_media_type_must_match_content_type() -> None:
    assert isinstance(mt.parse_document(_manifest(), "m", mt.OCI_MANIFEST), mt.Manifest)
    with pytest.raises(ImageError, match="disagrees with Content-Type"):
        mt.parse_document(_manifest(), "m", mt.OCI_INDEX)
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                        "manifests": []}).encode()
    with pytest.raises(ImageError):
        mt.parse_document(index, "m")


def test_descriptor_digest_checked_before_use() -> None:
    doc = json.loads(_manifest())
    doc["config"]["digest"] = "sha256:../../../etc/passwd"
    with pytest.raises(ImageError):
        mt.parse_document(json.dumps(doc).encode(), "m")


@pytest.mark.parametrize("bad", ["sha256:../../x", "sha256:" + "A" * 64, "sha256:" + "a" * 63,
                                 "sha512:" + "a" * 128, None, 5])
def test_digest_grammar(bad: object) -> None:
    with pytest.raises((InvalidArgument, ImageError)):
        check_digest(bad)


def test_copy_verified_caps_and_checks() -> None:
    data = b"hello"
    out = io.BytesIO()
    assert copy_verified(io.BytesIO(data), out, sha256_digest(data), 5, "b") == 5
    with pytest.raises(DigestMismatch, match="more than the 4 bytes"):
        copy_verified(io.BytesIO(data), io.BytesIO(), sha256_digest(data), 4, "b")
    with pytest.raises(DigestMismatch, match="got 5 bytes"):
        copy_verified(io.BytesIO(data), io.BytesIO(), sha256_digest(data), 6, "b")
    with pytest.raises(DigestMismatch, match="hashes to"):
        copy_verified(io.BytesIO(b"hellO"), io.BytesIO(), sha256_digest(data), 5, "blob X")


def test_image_config_from_oci() -> None:
    cfg = ImageConfig.from_oci({"Entrypoint": ["/e"], "Cmd": None, "Env": ["A=1"],
                                "ExposedPorts": {"53/udp": {}, "80/tcp": {}},
                                "StopSignal": "SIGINT", "Labels": None})
    assert cfg.entrypoint == ["/e"] and cfg.cmd is None and cfg.env == ["A=1"]
    assert cfg.exposed_ports == ["53/udp", "80/tcp"] and cfg.labels == {}
    assert ImageConfig.from_oci(cfg.to_oci()) == cfg
    assert ImageConfig.from_oci(None) == ImageConfig()
    with pytest.raises(ImageError):
        ImageConfig.from_oci({"Cmd": [1, 2]})
