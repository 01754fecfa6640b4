"""load/save round trips through skopeo and podman archives."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skopeo
from imgutil import D, F, OciLayout, S, make_tar, needs_root, tree

from sdcontainer.errors import DigestMismatch, ImageError
from sdcontainer.images.archive import load, save
from sdcontainer.images.config import RegistriesConfig
from sdcontainer.images.store import ImageStore, host_arch

pytestmark = needs_root

LAYERS = [make_tar([D("etc"), F("etc/a", b"a"), F("etc/b", b"b"), S("lnk", "/etc/a")]),
          make_tar([D("etc"), F("etc/.wh.a", b""), F("etc/c", b"c", mode=0o4755)])]
UPPER_TREE = {"etc": "dir", "etc/a": "whiteout", "etc/c": "file:c"}


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images", config=RegistriesConfig())


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    lay = OciLayout(tmp_path / "layout")
    lay.tag(lay.image(LAYERS, arch=host_arch(), config={"Cmd": ["/etc/c"]}), "t")
    return lay.root


def check_image(store: ImageStore, ref: str) -> None:
    img = store.resolve(ref)
    assert img.config.cmd == ["/etc/c"]
    assert len(img.layers) == 2 and tree(img.layers[1]) == UPPER_TREE


def test_load_skopeo_docker_archive(store: ImageStore, layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.tar"
    skopeo("copy", f"oci:{layout}:t", f"docker-archive:{out}:example.com/team/app:2")
    images = load(store, out)
    assert [i.repo_tags for i in images] == [["example.com/team/app:2"]]
    check_image(store, "example.com/team/app:2")


def test_load_skopeo_oci_archive(store: ImageStore, layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.tar"
    skopeo("copy", f"oci:{layout}:t", f"oci-archive:{out}:app:3")
    images = load(store, out)
    assert images[0].repo_tags == ["app:3"]
    check_image(store, "app:3")


def test_load_from_a_pipe(store: ImageStore, layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.tar"
    skopeo("copy", f"oci:{layout}:t", f"docker-archive:{out}:piped:1")
    r, w = os.pipe()
    with subprocess.Popen(["cat", str(out)], stdout=w) as cat:
        os.close(w)
        with os.fdopen(r, "rb") as f:
            load(store, f)
    assert cat.returncode == 0
    check_image(store, "piped:1")


def test_save_read_by_skopeo(store: ImageStore, layout: Path, tmp_path: Path) -> None:
    skopeo("copy", f"oci:{layout}:t", f"oci-archive:{tmp_path / 'in.tar'}:app:1")
    load(store, tmp_path / "in.tar")
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as f:
        save(store, ["app:1"], f)
    for transport in ("docker-archive", "oci-archive"):
        dest = tmp_path / f"back-{transport}"
        skopeo("copy", f"{transport}:{saved}", f"oci:{dest}:x")
        index = json.loads((dest / "index.json").read_text())
        manifest = json.loads((dest / "blobs/sha256" / index["manifests"][0]["digest"][7:])
                              .read_bytes())
        assert len(manifest["layers"]) == 2
    # And our own loader reads it back into an empty store, keeping the id.
    other = ImageStore(tmp_path / "other", config=RegistriesConfig())
    assert [i.id for i in load(other, saved)] == [store.resolve("app:1").id]
    assert other.resolve("app:1").repo_tags == ["app:1"]


def test_save_by_id_is_untagged(store: ImageStore, tmp_path: Path) -> None:
    img = store.import_rootfs(io.BytesIO(make_tar([F("x")])), "named")
    buf = io.BytesIO()
    save(store, [img.short_id], buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        member = tf.extractfile("manifest.json")
        assert member is not None
        assert json.load(member)[0]["RepoTags"] == []


def test_load_refuses_wrong_diff_id(store: ImageStore, tmp_path: Path) -> None:
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    layer = make_tar([F("f")])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        manifest = [{"Config": "c.json", "RepoTags": ["bad:1"], "Layers": ["l/layer.tar"]}]
        members = (("c.json", cfg), ("l/layer.tar", layer),
                   ("manifest.json", json.dumps(manifest).encode()))
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    with pytest.raises(DigestMismatch, match=r"l/layer\.tar"):
        load(store, buf)
    store.collect_garbage(clean_tmp=True)
    assert store.list() == []
    assert list((store.root / "layers").iterdir()) == []


def test_load_refuses_links_out_of_archive(store: ImageStore) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = json.dumps([{"Config": "c.json", "Layers": []}]).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
        link = tarfile.TarInfo("c.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc/passwd"
        tf.addfile(link)
    buf.seek(0)
    with pytest.raises(ImageError, match="outside the archive"):
        load(store, buf)


@pytest.fixture
def runroot(tmp_path: Path) -> Iterator[Path]:
    """podman refuses a runroot longer than 50 characters: pytest's tmp paths are."""
    path = Path(tempfile.mkdtemp(prefix="sdcpm-", dir="/tmp"))
    yield path
    # podman's overlay driver leaves its storage directory mounted on itself.
    for root in (tmp_path / "podman-root", path):
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", m], check=False)
    shutil.rmtree(path, ignore_errors=True)


def podman(tmp_path: Path, runroot: Path, *args: str) -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    base = ["podman", "--root", str(tmp_path / "podman-root"),
            "--runroot", str(runroot), "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    res = subprocess.run([*base, *args], capture_output=True, text=True,
                         env={**os.environ, "XDG_RUNTIME_DIR": str(runroot)})
    assert res.returncode == 0, f"podman {args[0]} failed: {res.stderr}"
    return res.stdout


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_round_trip(store: ImageStore, layout: Path, tmp_path: Path, runroot: Path,
                           fmt: str) -> None:
    skopeo("copy", f"oci:{layout}:t", f"oci-archive:{tmp_path / 'in.tar'}:localhost/rt:1")
    [img] = load(store, tmp_path / "in.tar")
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        save(store, ["localhost/rt:1"], f)
    podman(tmp_path, runroot, "load", "-i", str(ours))
    listed = podman(tmp_path, runroot, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert f"localhost/rt:1 {img.id[7:19]}" in listed
    theirs = tmp_path / "theirs.tar"
    podman(tmp_path, runroot, "save", "--format", fmt, "-o", str(theirs), "localhost/rt:1")
    other = ImageStore(tmp_path / "other", config=RegistriesConfig())
    [back] = load(other, theirs)
    assert back.id == img.id
    assert "localhost/rt:1" in back.repo_tags
    check_image(other, "localhost/rt:1")
