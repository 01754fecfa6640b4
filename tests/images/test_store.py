"""The image store: rootfs import, names, tags, removal, digest hygiene."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from imgutil import D, F, S, make_tar, needs_root, tree

from sdcontainer.errors import Conflict, InvalidArgument, NoSuchImage
from sdcontainer.images.config import RegistriesConfig
from sdcontainer.images.store import ImageStore

pytestmark = needs_root


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images", config=RegistriesConfig())


ROOTFS = [D("./"), D("bin"), F("bin/sh", b"#!shell", mode=0o755), S("usr", "/"),
          D("etc"), F("etc/os-release", b"ID=test\n")]


@pytest.mark.parametrize("gz", [False, True])
def test_import_rootfs(store: ImageStore, tmp_path: Path, gz: bool) -> None:
    src = tmp_path / "rootfs.tar"
    src.write_bytes(make_tar(ROOTFS, gz=gz))
    img = store.import_rootfs(src, "test/app:1.0", {"Cmd": ["/bin/sh"], "Env": ["A=1"]})
    assert img.id.startswith("sha256:") and len(img.id) == 71
    assert img.repo_tags == ["test/app:1.0"]
    assert img.config.cmd == ["/bin/sh"] and img.config.env == ["A=1"]
    assert img.os == "linux" and img.architecture
    assert len(img.layers) == 1
    assert tree(img.layers[0]) == {
        "bin": "dir", "bin/sh": "file:#!shell", "usr": "link:/",
        "etc": "dir", "etc/os-release": "file:ID=test\n",
    }
    assert img.size == len(b"#!shell") + len(b"ID=test\n")
    for d in (store.root, store.root / "blobs", store.root / "layers",
              img.layers[0].parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert store.resolve("test/app:1.0") == img
    assert store.resolve("docker.io/test/app:1.0").id == img.id
    assert store.resolve(img.id).id == img.id
    assert store.resolve(img.short_id).id == img.id
    assert store.resolve(img.id[7:15]).id == img.id
    assert store.resolve(img.id[:15]).id == img.id  # sha256:<short>


def test_import_from_stream_and_same_layer_shared(store: ImageStore) -> None:
    data = make_tar(ROOTFS)
    a = store.import_rootfs(io.BytesIO(data), "a")
    b = store.import_rootfs(io.BytesIO(data), "b", {"Cmd": ["x"]})
    assert a.id != b.id
    assert a.layers == b.layers
    assert len(list((store.root / "layers").iterdir())) == 1


def test_no_such_image(store: ImageStore) -> None:
    with pytest.raises(NoSuchImage, match=r"^no such image: nope$"):
        store.resolve("nope")
    with pytest.raises(NoSuchImage):
        store.resolve("sha256:" + "a" * 64)


def test_tag_remove_prune(store: ImageStore) -> None:
    img = store.import_rootfs(io.BytesIO(make_tar(ROOTFS)), "one:1")
    store.tag("one:1", "two")
    assert sorted(store.resolve("two").repo_tags) == ["one:1", "two:latest"]
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(img.id)
    assert store.remove("one:1") == ["Untagged: one:1"]
    assert store.resolve(img.short_id).repo_tags == ["two:latest"]
    assert store.remove("two") == ["Untagged: two:latest", f"Deleted: {img.id}"]
    assert store.list() == []
    assert list((store.root / "layers").iterdir()) == []
    assert list((store.root / "blobs/sha256").iterdir()) == []

    kept = store.import_rootfs(io.BytesIO(make_tar(ROOTFS)), None)
    gone = store.import_rootfs(io.BytesIO(make_tar([F("x")])), None)
    store.import_rootfs(io.BytesIO(make_tar([F("y")])), "tagged")
    assert sorted(store.prune({kept.id})) == [gone.id]
    assert {i.id for i in store.list()} == {kept.id, store.resolve("tagged").id}


def test_force_remove_by_id(store: ImageStore) -> None:
    img = store.import_rootfs(io.BytesIO(make_tar(ROOTFS)), "one")
    store.tag("one", "two")
    out = store.remove(img.short_id, force=True)
    assert out[-1] == f"Deleted: {img.id}"
    assert store.list() == []


@pytest.mark.parametrize("bad", ["sha256:../../x", "sha256:" + "A" * 64, "sha256:" + "a" * 63,
                                 "sha256:" + "a" * 65, "../etc/passwd", "sha256:/" + "a" * 63])
def test_digest_grammar_before_paths(store: ImageStore, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        store.blob_path(bad)
    with pytest.raises(InvalidArgument):
        store.layer_dir(bad)


def test_state_file_is_json_and_atomic(store: ImageStore) -> None:
    store.import_rootfs(io.BytesIO(make_tar(ROOTFS)), "x")
    state = json.loads((store.root / "state.json").read_text())
    assert list(state["tags"]) == ["docker.io/library/x:latest"]
    leftovers = [p for p in store.root.iterdir() if p.name.startswith(".state.json")]
    assert leftovers == []


def test_concurrent_imports_of_one_layer(store: ImageStore) -> None:
    data = make_tar([F(f"f{i}", os.urandom(1000)) for i in range(200)])
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            ImageStore(store.root, config=RegistriesConfig()).import_rootfs(
                io.BytesIO(data), f"c{n}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list((store.root / "layers").iterdir())) == 1
    assert list((store.root / "tmp").iterdir()) == []
    # Configs differ when the imports straddle a second (created time); layers never do.
    assert sum(len(i.repo_tags) for i in store.list()) == 6


def test_failed_import_leaves_store_as_it_was(store: ImageStore) -> None:
    store.import_rootfs(io.BytesIO(make_tar(ROOTFS)), "good")
    before = sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*")
                    if "locks" not in p.parts)
    with pytest.raises(Exception, match="escapes"):
        store.import_rootfs(io.BytesIO(make_tar([F("../evil")])), "bad")
    store.collect_garbage(clean_tmp=True)
    after = sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*")
                   if "locks" not in p.parts)
    assert after == before
