"""Pulls from a real docker-registry on 127.0.0.1, fed by skopeo from OCI layouts."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import Registry, TokenServer, skopeo
from imgutil import D, F, OciLayout, S, make_tar, needs_root, tree

from sdcontainer.errors import DigestMismatch, ImageError, RegistryError
from sdcontainer.images import auth
from sdcontainer.images.config import RegistriesConfig
from sdcontainer.images.pull import Progress, pull
from sdcontainer.images.store import ImageStore, host_arch

pytestmark = needs_root
_names = itertools.count()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images", config=RegistriesConfig())


def push(reg: Registry, layout: Path, tag: str, name: str, *, all_: bool = False,
         creds: bool = False) -> str:
    """Push oci:LAYOUT:TAG to the registry as NAME; return the full reference."""
    ref = f"{reg.host}/{name}"
    extra = ["--all"] if all_ else []
    if creds:
        extra += ["--dest-creds", f"{reg.user}:{reg.password}"]
    skopeo("copy", "--dest-tls-verify=false", *extra, f"oci:{layout}:{tag}", f"docker://{ref}")
    return ref


def layout_with(tmp_path: Path, layers: list[bytes],
                **kw: object) -> tuple[Path, dict[str, object]]:
    lay = OciLayout(tmp_path / f"layout{next(_names)}")
    desc = lay.image(layers, **kw)  # type: ignore[arg-type]
    lay.tag(desc, "t")
    return lay.root, desc


def store_files(store: ImageStore) -> list[str]:
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*")
                  if "locks" not in p.parts and not p.name.endswith(".lock"))


def test_pull_one_layer(registry: Registry, store: ImageStore, tmp_path: Path) -> None:
    layer = make_tar([D("bin"), F("bin/hello", b"hi", mode=0o4755), S("sbin", "bin")])
    layout, _ = layout_with(tmp_path, [layer], arch=host_arch(), config={
        "Cmd": ["/bin/hello"], "Env": ["PATH=/bin"], "WorkingDir": "/w", "User": "1000",
        "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "b"},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}})
    ref = push(registry, layout, "t", "test/one:1")
    events: list[Progress] = []
    img = pull(store, ref, progress=events.append)
    assert img.repo_tags == [ref]
    assert len(img.repo_digests) == 1
    assert img.repo_digests[0].startswith(f"{registry.host}/test/one@sha256:")
    assert img.config.cmd == ["/bin/hello"] and img.config.stop_signal == "SIGQUIT"
    assert img.config.exposed_ports == ["80/tcp"] and img.config.labels == {"a": "b"}
    assert img.config.healthcheck == {"Test": ["CMD", "true"], "Interval": 1000000000}
    assert img.config.working_dir == "/w" and img.config.user == "1000"
    assert tree(img.layers[0]) == {"bin": "dir", "bin/hello": "file:hi", "sbin": "link:bin"}
    assert stat.S_IMODE((img.layers[0] / "bin/hello").stat().st_mode) == 0o4755
    statuses = [e.status for e in events]
    assert "Pull complete" in statuses and statuses[-1].startswith("Digest: sha256:")
    assert store.resolve(ref).id == img.id
    # Pulling again re-uses everything.
    again = pull(store, ref)
    assert again.id == img.id
    # By digest: no tag is added, the digest is recorded.
    by_digest = pull(store, img.repo_digests[0])
    assert by_digest.id == img.id
    assert store.resolve(img.repo_digests[0]).id == img.id


def test_pull_multiarch(registry: Registry, store: ImageStore, tmp_path: Path) -> None:
    lay = OciLayout(tmp_path / "multi")
    amd = lay.image([make_tar([F("arch", b"amd64")])], arch="amd64")
    arm = lay.image([make_tar([F("arch", b"arm64")])], arch="arm64")
    index = lay.multi([amd, arm])
    lay.tag(index, "t")
    ref = push(registry, lay.root, "t", "test/multi:1", all_=True)
    native = pull(store, ref)
    assert tree(native.layers[0]) == {"arch": f"file:{host_arch()}"}
    other = "arm64" if host_arch() == "amd64" else "amd64"
    chosen = pull(store, ref, platform=f"linux/{other}")
    assert chosen.architecture == other
    assert tree(chosen.layers[0]) == {"arch": f"file:{other}"}
    # The repo digest is the index's: what `docker pull name@digest` needs.
    assert chosen.repo_digests == [f"{registry.host}/test/multi@{index['digest']}"]
    with pytest.raises(ImageError, match="no image for linux/s390x"):
        pull(store, ref, platform="linux/s390x")


LOWER = make_tar([D("etc"), F("etc/a", b"a"), F("etc/b", b"b"), D("var"), F("var/old", b"o"),
                  F("gone", b"g")])
UPPER = make_tar([D("etc"), F("etc/.wh.a", b""), F(".wh.gone", b""), D("var"),
                  F("var/.wh..wh..opq", b""), F("var/new", b"n")])


def test_pull_two_layers_with_whiteouts(registry: Registry, store: ImageStore,
                                        tmp_path: Path) -> None:
    layout, _ = layout_with(tmp_path, [LOWER, UPPER], arch=host_arch())
    img = pull(store, push(registry, layout, "t", "test/wh:1"))
    assert len(img.layers) == 2
    assert tree(img.layers[1]) == {"etc": "dir", "etc/a": "whiteout", "gone": "whiteout",
                                   "var": "dir,opaque", "var/new": "file:n"}
    merged = tmp_path / "merged"
    merged.mkdir()
    lowers = ":".join(str(p) for p in reversed(img.layers))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowers}",
                    str(merged)], check=True)
    try:
        got = tree(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert got == {"etc": "dir", "etc/b": "file:b", "var": "dir", "var/new": "file:n"}


def test_corrupt_blob_is_refused(registry: Registry, store: ImageStore, tmp_path: Path) -> None:
    layout, desc = layout_with(tmp_path, [make_tar([F("f", os.urandom(4096))])], arch=host_arch())
    ref = push(registry, layout, "t", "test/corrupt:1")
    manifest = json.loads((layout / "blobs/sha256" / str(desc["digest"])[7:]).read_bytes())
    layer_digest = manifest["layers"][0]["digest"]
    data = registry.blob_data(layer_digest)
    raw = bytearray(data.read_bytes())
    raw[-20] ^= 0xFF  # same size, different bytes
    data.write_bytes(bytes(raw))
    before = store_files(store)
    with pytest.raises(DigestMismatch, match=layer_digest):
        pull(store, ref)
    assert store_files(store) == before
    assert store.list() == []


def test_missing_blob_is_refused(registry: Registry, store: ImageStore, tmp_path: Path) -> None:
    layout, desc = layout_with(tmp_path, [make_tar([F("f", b"x")])], arch=host_arch())
    ref = push(registry, layout, "t", "test/missing:1")
    manifest = json.loads((layout / "blobs/sha256" / str(desc["digest"])[7:]).read_bytes())
    layer_digest = manifest["layers"][0]["digest"]
    registry.blob_data(layer_digest).unlink()
    before = store_files(store)
    with pytest.raises(RegistryError, match=layer_digest):
        pull(store, ref)
    assert store_files(store) == before


def test_unknown_tag(registry: Registry, store: ImageStore) -> None:
    with pytest.raises(RegistryError, match="manifest"):
        pull(store, f"{registry.host}/test/nothing:here")


def test_plain_http_needs_insecure(registry: Registry, tmp_path: Path) -> None:
    strict = ImageStore(tmp_path / "s", config=RegistriesConfig(insecure=()))
    with pytest.raises(RegistryError, match="TLS"):
        pull(strict, f"{registry.host}/test/one:1")


def test_login_and_pull_with_auth(auth_registry: Registry, store: ImageStore,
                                  tmp_path: Path) -> None:
    layout, _ = layout_with(tmp_path, [make_tar([F("secret", b"s")])], arch=host_arch())
    ref = push(auth_registry, layout, "t", "test/private:1", creds=True)
    auth_file = tmp_path / "state" / "auth.json"
    with pytest.raises(RegistryError, match=r"authentication required|access denied"):
        pull(store, ref, auth_file=auth_file)
    with pytest.raises(RegistryError):
        auth.login(auth_registry.host, "tester", "wrong", auth_file=auth_file,
                   config=store.config)
    assert not auth_file.exists()
    assert auth_registry.password is not None
    auth.login(auth_registry.host, "tester", auth_registry.password, auth_file=auth_file,
               config=store.config)
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert auth.credentials_for(auth_registry.host, auth_file) == ("tester", "s3cret!")
    img = pull(store, ref, auth_file=auth_file)
    assert tree(img.layers[0]) == {"secret": "file:s"}
    assert auth.logout(auth_registry.host, auth_file=auth_file)
    assert not auth.logout(auth_registry.host, auth_file=auth_file)
    assert auth.credentials_for(auth_registry.host, auth_file) is None


def test_anonymous_bearer_token_flow(token_registry: tuple[Registry, TokenServer],
                                     store: ImageStore, tmp_path: Path) -> None:
    reg, tokens = token_registry
    layout, _ = layout_with(tmp_path, [make_tar([F("tok", b"t")])], arch=host_arch())
    ref = push(reg, layout, "t", "test/tok:1")
    tokens.requests.clear()
    img = pull(store, ref, auth_file=tmp_path / "none.json")
    assert tree(img.layers[0]) == {"tok": "file:t"}
    assert tokens.requests, "the pull must have fetched a token"
    assert all(auth_header is None for _, auth_header in tokens.requests)
    assert any("scope=repository%3Atest%2Ftok%3Apull" in path for path, _ in tokens.requests)


def test_credentials_go_to_a_same_host_realm(token_registry: tuple[Registry, TokenServer],
                                             store: ImageStore, tmp_path: Path) -> None:
    reg, tokens = token_registry
    layout, _ = layout_with(tmp_path, [make_tar([F("c", b"c")])], arch=host_arch())
    ref = push(reg, layout, "t", "test/creds:1")
    auth_file = tmp_path / "auth.json"
    auth.login(reg.host, "someone", "pw", auth_file=auth_file, config=store.config)
    tokens.requests.clear()
    pull(store, ref, auth_file=auth_file)
    assert tokens.requests and all(h and h.startswith("Basic ") for _, h in tokens.requests)


def test_credentials_never_go_to_another_host_realm(
        token_registry: tuple[Registry, TokenServer], store: ImageStore, tmp_path: Path) -> None:
    """CVE-2020-15157: the realm (127.0.0.1) is not the registry's host (localhost)."""
    reg, tokens = token_registry
    layout, _ = layout_with(tmp_path, [make_tar([F("x", b"x")])], arch=host_arch())
    push(reg, layout, "t", "test/other:1")
    port = reg.host.rsplit(":", 1)[1]
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {f"localhost:{port}": {"auth": "dXNlcjpwdw=="}}}))
    tokens.requests.clear()
    with pytest.raises(RegistryError, match="not sending credentials"):
        pull(store, f"localhost:{port}/test/other:1", auth_file=auth_file)
    assert all(h is None for _, h in tokens.requests)
