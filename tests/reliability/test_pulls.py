"""20 parallel pulls of images that share layers, through the daemon: every blob is
downloaded from the registry exactly once, and nothing is left in the store's tmp/."""

from __future__ import annotations

import collections
import concurrent.futures
import io
import json
import random
import re
import tarfile
import uuid
from collections.abc import Iterator

import pytest

from tests.images.conftest import Registry, _start_registry, skopeo
from tests.images.imgutil import OciLayout
from tests.integration.conftest import REPO, sdc, sh

from .helpers import STATE

IMAGES_TMP = STATE / "images" / "tmp"
BLOBS = STATE / "images" / "blobs" / "sha256"
# docker-registry's access log (gorilla's combined format, on its stdout).
BLOB_GET = re.compile(r'"GET /v2/\S+/blobs/(sha256:[0-9a-f]{64})[ ?]')
CONFIG = {"Env": ["PATH=/bin:/usr/bin"], "Cmd": ["sh"]}


def file_layer(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tarball holding FILES."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def logged_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry of our own whose access log (every request) lands in registry.log."""
    base = tmp_path_factory.mktemp("pulls") / "registry"
    with pytest.MonkeyPatch.context() as mp:
        # The shared fixtures' config turns the access log off; this overrides that key.
        mp.setenv("REGISTRY_LOG_ACCESSLOG_DISABLED", "false")
        reg = _start_registry(base, None)
    yield reg
    reg.proc.terminate()
    reg.proc.wait(10)


@pytest.fixture(scope="module")
def images(logged_registry: Registry, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, set[str]]:
    """Four images sharing a base layer (two also share a middle one), pushed to four
    repositories; each reference -> the digests of its config and layer blobs."""
    tmp = tmp_path_factory.mktemp("pulls-images")
    rootfs = tmp / "rootfs.tar"
    sh(str(REPO / "tools" / "busybox-rootfs"), str(rootfs))
    run = uuid.uuid4().hex
    # A marker makes this run's base blob new to the store, whatever ran before.
    with tarfile.open(rootfs, "a") as t:
        data = run.encode()
        info = tarfile.TarInfo("etc/pulls-run")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    base = rootfs.read_bytes()
    middle = file_layer({"etc/middle": f"middle {run}\n".encode()})
    stacks = {
        "a": [base, file_layer({"top": b"a\n"})],
        "b": [base, file_layer({"top": b"b\n"})],
        "c": [base, middle, file_layer({"top": b"c\n"})],
        "d": [base, middle],
    }
    out: dict[str, set[str]] = {}
    for key, layers in stacks.items():
        lay = OciLayout(tmp / f"layout-{key}")
        desc = lay.image(layers, config=CONFIG)
        lay.tag(desc, "1")
        manifest = json.loads((lay.root / "blobs/sha256" / str(desc["digest"])[7:]).read_bytes())
        ref = f"{logged_registry.host}/pulls/{key}:1"
        skopeo("copy", "--dest-tls-verify=false", f"oci:{lay.root}:1", f"docker://{ref}")
        out[ref] = {manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])}
    return out


def blob_gets(reg: Registry, skip: int) -> collections.Counter[str]:
    """GET requests per blob digest in the registry's log after its first SKIP lines."""
    lines = (reg.storage.parent / "registry.log").read_text(errors="replace").splitlines()
    return collections.Counter(m.group(1) for line in lines[skip:]
                               if (m := BLOB_GET.search(line)))


def test_20_parallel_pulls_download_each_blob_once(
        daemon: None, logged_registry: Registry, images: dict[str, set[str]]) -> None:
    wanted = set().union(*images.values())
    assert not [d for d in wanted if (BLOBS / d[7:]).exists()], "blobs already in the store"
    tmp_before = set(IMAGES_TMP.iterdir())
    log = logged_registry.storage.parent / "registry.log"
    skip = len(log.read_text(errors="replace").splitlines())

    refs = [ref for ref in images for _ in range(5)]  # 20 pulls, five of each image
    random.shuffle(refs)
    with concurrent.futures.ThreadPoolExecutor(len(refs)) as pool:
        results = list(pool.map(lambda ref: (ref, sdc("pull", ref, timeout=300)), refs))
    failed = [(ref, r.returncode, r.stderr) for ref, r in results if r.returncode != 0]
    assert not failed, failed

    gets = blob_gets(logged_registry, skip)
    assert set(gets) == wanted, ("blobs fetched", set(gets) ^ wanted)
    twice = {d: n for d, n in gets.items() if n != 1}
    assert not twice, ("blobs downloaded more than once", twice)
    assert all((BLOBS / d[7:]).is_file() for d in wanted)
    leftovers = set(IMAGES_TMP.iterdir()) - tmp_before
    assert not leftovers, leftovers

    for ref in images:
        r = sdc("run", "--rm", ref, "true", timeout=120)
        assert r.returncode == 0, (ref, r.stderr)
    for key in "abc":
        ref = next(ref for ref in images if f"/pulls/{key}:" in ref)
        r = sdc("run", "--rm", ref, "cat", "/top", "/etc/pulls-run", timeout=120)
        assert r.returncode == 0 and r.stdout.startswith(f"{key}\n"), (ref, r.stdout, r.stderr)
    d = next(ref for ref in images if "/pulls/d:" in ref)
    r = sdc("run", "--rm", d, "cat", "/etc/middle", timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("middle "), (r.stdout, r.stderr)

