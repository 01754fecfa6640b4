"""Sparse tar members and header bombs against the layer extractor.

A sparse member stores only its data segments: a few KiB of archive can declare
a file of any size.  The extractor counts the real size against Limits.max_bytes
before writing anything, and writes holes as holes.  Real archives come from GNU
tar (old GNU 'S' members and the PAX 0.0, 0.1 and 1.0 forms); hostile maps are
crafted with tarfile's writer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from imgutil import needs_root

from sdcontainer.errors import ImageError, UnsafeArchive
from sdcontainer.images.extract import Limits, extract_layer

pytestmark = needs_root

GIB = 1 << 30
FORMATS = ["gnu", "0.0", "0.1", "1.0"]


def unpack(data: bytes, dest: Path, **kw: object) -> object:
    return extract_layer(io.BytesIO(data), dest, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sparse_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 GiB file with 'hello' at 4096 and 'end' at its very end, the rest holes."""
    d = tmp_path_factory.mktemp("sparse")
    f = d / "big"
    with open(f, "wb") as out:
        out.truncate(GIB)
        out.seek(4096)
        out.write(b"hello")
        out.seek(GIB - 3)
        out.write(b"end")
    return f


def gnu_tar(source: Path, fmt: str) -> bytes:
    """SOURCE archived sparse by GNU tar in format FMT."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
    opts = ["--format=gnu"] if fmt == "gnu" else ["--format=posix", f"--sparse-version={fmt}"]
    r = subprocess.run(["tar", "--sparse", *opts, "-C", str(source.parent), "-cf", "-",
                        source.name], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"tar cannot write sparse format {fmt}: {r.stderr.decode().strip()}")
    return r.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_bomb_refused_before_writing(sparse_source: Path, tmp_path: Path,
                                            fmt: str) -> None:
    archive = gzip.compress(gnu_tar(sparse_source, fmt))
    assert len(archive) < 4096, "the point: a tiny archive"
    with pytest.raises(UnsafeArchive) as exc:
        unpack(archive, tmp_path / "d", limits=Limits(max_bytes=64 << 20))
    message = str(exc.value)
    assert "\n" not in message
    assert "'big'" in message and f"of {GIB} bytes exceeds the limit" in message
    assert not (tmp_path / "d").exists(), "a refused layer leaves nothing behind"


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_member_written_with_holes(sparse_source: Path, tmp_path: Path,
                                          fmt: str) -> None:
    raw = gnu_tar(sparse_source, fmt)
    stats = unpack(gzip.compress(raw), tmp_path / "d")
    out = tmp_path / "d" / "big"
    st = out.stat()
    assert st.st_size == GIB
    assert st.st_blocks * 512 <= 1 << 20, "holes must stay holes on disk"
    with open(out, "rb") as f:
        assert f.read(4101) == bytes(4096) + b"hello"
        f.seek(GIB - 4)
        assert f.read() == b"\0end"
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()  # type: ignore[attr-defined]


def sparse_01(realsize: int, segments: list[tuple[int, int]], stored: bytes,
              name: str = "f") -> bytes:
    """A PAX 0.1 sparse member, map and sizes as given (consistent or not)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
        ti.size = len(stored)
        ti.pax_headers = {
            "GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": name,
            "GNU.sparse.size": str(realsize),
            "GNU.sparse.map": ",".join(f"{o},{n}" for o, n in segments),
        }
        tf.addfile(ti, io.BytesIO(stored))
    return buf.getvalue()


def sparse_10(realsize: int, map_text: bytes, stored: bytes, name: str = "f") -> bytes:
    """A PAX 1.0 sparse member: the map is text at the start of the member's data."""
    header = map_text + bytes(-len(map_text) % 512)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
        ti.size = len(header) + len(stored)
        ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                          "GNU.sparse.name": name, "GNU.sparse.realsize": str(realsize)}
        tf.addfile(ti, io.BytesIO(header + stored))
    return buf.getvalue()


def test_crafted_sparse_within_limits_works(tmp_path: Path) -> None:
    unpack(sparse_01(100, [(10, 3), (50, 2)], b"abcde"), tmp_path / "d")
    assert (tmp_path / "d" / "f").read_bytes() == bytes(10) + b"abc" + bytes(37) + b"de" + \
        bytes(48)


BAD_MAPS = {
    "overlapping": sparse_01(100, [(10, 5), (12, 5)], b"x" * 10),
    "unordered": sparse_01(100, [(50, 5), (10, 5)], b"x" * 10),
    "past-real-size": sparse_01(100, [(98, 5)], b"x" * 5),
    "more-data-than-stored": sparse_01(1 << 20, [(0, 4096), (8192, 4096)], b"x" * 512),
    "1.0-overlapping": sparse_10(100, b"2\n10\n5\n12\n5\n", b"x" * 10),
}


@pytest.mark.parametrize("case", sorted(BAD_MAPS))
def test_invalid_sparse_map_refused(tmp_path: Path, case: str) -> None:
    with pytest.raises(UnsafeArchive, match="invalid sparse map"):
        unpack(BAD_MAPS[case] + tarfile.NUL * 1024, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_endless_sparse_map_refused(tmp_path: Path) -> None:
    # A 1.0 map that promises a billion entries: tarfile would read (and keep as
    # Python ints) everything up to the end of the stream.
    bomb = sparse_10(GIB, b"1000000000\n" + b"0\n" * (8 << 20), b"")
    with pytest.raises(UnsafeArchive, match="sparse map larger than"):
        unpack(gzip.compress(bomb), tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_garbage_sparse_map_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="corrupt tar") as exc:
        unpack(sparse_10(100, b"two\n", b"x") + tarfile.NUL * 1024, tmp_path / "d")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "d").exists()


def test_huge_pax_header_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("f")
        ti.pax_headers = {"comment": "x" * (2 << 20)}
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(UnsafeArchive, match="meta header of"):
        unpack(gzip.compress(buf.getvalue()), tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_long_header_chain_refused(tmp_path: Path) -> None:
    glob = tarfile.TarInfo.create_pax_global_header({"comment": "g"})
    data = glob * 40 + sparse_01(10, [(0, 1)], b"x") + tarfile.NUL * 1024
    with pytest.raises(UnsafeArchive, match="chained tar headers"):
        unpack(data, tmp_path / "d")
    assert not (tmp_path / "d").exists()
