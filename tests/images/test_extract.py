"""The layer extractor against crafted archives: breakouts, whiteouts, limits, metadata."""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest
from imgutil import D, Entry, F, H, S, make_tar, needs_root, snapshot, tree

from sdcontainer.errors import ImageError, UnsafeArchive
from sdcontainer.images.extract import Limits, extract_layer

pytestmark = needs_root


@pytest.fixture
def harness(tmp_path: Path) -> tuple[Path, Path]:
    """dest/ (not yet created) beside a victim/ the archive must never touch."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_text("keep me")
    (victim / "sub").mkdir()
    (victim / "sub" / "file").write_text("also")
    return tmp_path / "dest", victim


def unpack(data: bytes, dest: Path, **kw: object) -> object:
    return extract_layer(io.BytesIO(data), dest, **kw)  # type: ignore[arg-type]


BREAKOUTS = {
    "dotdot": [F("../victim/secret", b"pwned")],
    "dotdot-deep": [D("a"), F("a/../../victim/new", b"pwned")],
    "absolute-dotdot": [F("/../victim/secret", b"pwned")],
    "relative-symlink-out": [S("l", "../victim"), F("l/secret", b"pwned")],
    "relative-symlink-out-new": [S("l", "../victim"), F("l/new", b"pwned")],
    "nested-symlink-out": [D("d"), S("d/l", "../../victim"), F("d/l/new", b"pwned")],
    "two-hop": [S("a", "b"), S("b", "../victim"), F("a/new", b"pwned")],
    "two-hop-dir": [D("d"), S("d/a", "../b"), S("b", "../victim"), F("d/a/sub/file", b"x")],
    "symlink-to-symlink-dotdot": [D("x"), S("x/up", ".."), S("out", "x/up/.."),
                                  F("out/victim/secret", b"pwned")],
    "hardlink-out": [H("h", "../victim/secret")],
    "hardlink-through-symlink": [S("l", "../victim"), H("h", "l/secret")],
    "hardlink-to-symlink-then-write": [S("l", "../victim"), H("h", "l"), F("h/new", b"x")],
    "whiteout-through-symlink": [S("l", "../victim"), F("l/.wh.secret")],
    "opaque-through-symlink": [S("l", "../victim"), F("l/.wh..wh..opq")],
    "whiteout-empty": [F(".wh.")],
    "whiteout-dotdot": [F(".wh..")],
    "whiteout-dot": [D("d"), F("d/.wh...")],
    "dotdot-only": [D("..")],
    "symlink-loop": [S("a", "b"), S("b", "a"), F("a/x")],
    "device-through-symlink": [S("l", "../victim"),
                               Entry("l/null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
    "symlink-through-symlink": [S("l", "../victim"), S("l/evil", "/etc/shadow")],
    "dir-through-symlink": [S("l", "../victim"), D("l/newdir")],
}


@pytest.mark.parametrize("case", sorted(BREAKOUTS))
def test_breakout_refused(harness: tuple[Path, Path], case: str) -> None:
    dest, victim = harness
    before = snapshot(victim)
    with pytest.raises((UnsafeArchive, ImageError)) as exc:
        unpack(make_tar(BREAKOUTS[case]), dest)
    assert "\n" not in str(exc.value)
    assert snapshot(victim) == before
    assert not dest.exists(), "a failed extraction must leave nothing behind"


SAFE = {
    # An absolute name is taken relative to the root, as docker does.
    "absolute-name": ([F("/etc/hosts", b"h")], {"etc": "dir", "etc/hosts": "file:h"}),
    # Absolute symlinks mean the layer root: the write lands inside.
    "absolute-symlink-write": (
        [S("var-run", "/run"), F("var-run/pid", b"1")],
        {"var-run": "link:/run", "run": "dir", "run/pid": "file:1"},
    ),
    "absolute-symlink-to-victim-path": (
        [S("l", "/victim"), F("l/secret", b"inside")],
        {"l": "link:/victim", "victim": "dir", "victim/secret": "file:inside"},
    ),
    # A symlink replaced by a file: the file replaces the link, never writes through it.
    "replace-symlink": (
        [S("l", "../victim/secret"), F("l", b"plain")],
        {"l": "file:plain"},
    ),
    "dangling-symlinks-kept": (
        [S("py", "/usr/bin/python3"), S("up", "../../../etc/passwd")],
        {"py": "link:/usr/bin/python3", "up": "link:../../../etc/passwd"},
    ),
    "dotdot-inside": ([D("a"), D("b"), F("a/../b/f", b"ok")],
                      {"a": "dir", "b": "dir", "b/f": "file:ok"}),
    "hardlink-inside": ([F("f", b"data"), H("h", "f")], {"f": "file:data", "h": "file:data"}),
    "hardlink-through-absolute-symlink": (
        [D("d"), F("d/f", b"data"), S("l", "/d"), H("h", "l/f")],
        {"d": "dir", "d/f": "file:data", "l": "link:/d", "h": "file:data"},
    ),
}


@pytest.mark.parametrize("case", sorted(SAFE))
def test_safe_cases(harness: tuple[Path, Path], case: str) -> None:
    dest, victim = harness
    before = snapshot(victim)
    entries, expected = SAFE[case]
    unpack(make_tar(entries), dest)
    assert snapshot(victim) == before
    assert tree(dest) == expected


def test_hardlink_shares_inode(tmp_path: Path) -> None:
    unpack(make_tar([F("f", b"data"), H("h", "f")]), tmp_path / "d")
    assert (tmp_path / "d/f").stat().st_ino == (tmp_path / "d/h").stat().st_ino


def test_metadata_kept(tmp_path: Path) -> None:
    cap = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # cap_net_bind_service+ep
    entries = [
        D("bin", mode=0o755, mtime=1_000_000),
        F("bin/su", b"#!", mode=0o4755, uid=0, gid=0, mtime=1_234_567),
        F("bin/ping", b"p", mode=0o755,
          pax={"SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
               "SCHILY.xattr.user.note": "hello",
               "SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
        F("home", b"", mode=0o600, uid=1234, gid=4321),
        Entry("dev-null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        Entry("blk", tarfile.BLKTYPE, mode=0o600, devmajor=7, devminor=0),
        Entry("fifo", tarfile.FIFOTYPE, mode=0o640),
        D("sticky", mode=0o1777),
    ]
    stats = unpack(make_tar(entries), tmp_path / "d")
    d = tmp_path / "d"
    su = (d / "bin/su").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_mtime == 1_234_567
    assert (d / "bin").stat().st_mtime == 1_000_000
    assert os.getxattr(d / "bin/ping", "security.capability") == cap
    assert os.getxattr(d / "bin/ping", "user.note") == b"hello"
    assert "trusted.overlay.redirect" not in os.listxattr(d / "bin/ping")
    home = (d / "home").stat()
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1234, 4321, 0o600)
    null = (d / "dev-null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK((d / "blk").lstat().st_mode)
    assert stat.S_ISFIFO((d / "fifo").lstat().st_mode)
    assert stat.S_IMODE((d / "sticky").stat().st_mode) == 0o1777
    assert stats.entries == len(entries)  # type: ignore[attr-defined]


def test_root_entry_sets_root_mode(tmp_path: Path) -> None:
    unpack(make_tar([D("./", mode=0o755, mtime=42), F("./f")]), tmp_path / "d")
    assert (tmp_path / "d").stat().st_mtime == 42


def test_diff_id_is_sha256_of_uncompressed(tmp_path: Path) -> None:
    import hashlib

    raw = make_tar([F("a", b"1"), D("b")])
    stats = unpack(gzip.compress(raw), tmp_path / "d")
    assert stats.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()  # type: ignore[attr-defined]


LOWER = [D("a"), F("a/x", b"ax"), F("a/y", b"ay"), D("b"), F("b/z", b"bz"), F("c", b"c"),
         D("d"), F("d/keep", b"k")]
UPPER = [D("a"), F("a/.wh.x"), F(".wh.c"), D("b"), F("b/.wh..wh..opq"), F("b/new", b"n"),
         F("d/.wh.gone"), F(".wh.d2"), D("d2"), F("d2/fresh", b"f")]


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    unpack(make_tar(UPPER), tmp_path / "upper")
    assert tree(tmp_path / "upper") == {
        "a": "dir", "a/x": "whiteout", "c": "whiteout",
        "b": "dir,opaque", "b/new": "file:n",
        "d": "dir", "d/gone": "whiteout",
        # whiteout then a directory of the same name in one layer: a new, opaque directory
        "d2": "dir,opaque", "d2/fresh": "file:f",
    }


def test_whiteouts_through_real_overlay(tmp_path: Path) -> None:
    unpack(make_tar(LOWER), tmp_path / "lower")
    unpack(make_tar(UPPER), tmp_path / "upper")
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={tmp_path / 'upper'}:{tmp_path / 'lower'}", str(merged)],
                   check=True)
    try:
        got = tree(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert got == {
        "a": "dir", "a/y": "file:ay",
        "b": "dir", "b/new": "file:n",
        "d": "dir", "d/keep": "file:k",
        "d2": "dir", "d2/fresh": "file:f",
    }


def test_gzip_bomb_stops_at_cap(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        ti = tarfile.TarInfo("zeros")
        ti.size = 64 << 20
        tf.addfile(ti, io.BytesIO(bytes(ti.size)))
    bomb = gzip.compress(raw.getvalue(), compresslevel=9)
    assert len(bomb) < 1 << 20
    with pytest.raises(UnsafeArchive, match="exceeds the limit"):
        unpack(bomb, tmp_path / "d", limits=Limits(max_bytes=8 << 20))
    assert not (tmp_path / "d").exists()


def test_entry_cap(tmp_path: Path) -> None:
    data = make_tar([F(f"f{i}") for i in range(100)])
    with pytest.raises(UnsafeArchive, match="more than 50 entries"):
        unpack(data, tmp_path / "d", limits=Limits(max_entries=50))
    assert not (tmp_path / "d").exists()


def test_time_cap(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive, match="longer than"):
        unpack(make_tar([F("a")]), tmp_path / "d", limits=Limits(max_seconds=0))


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_layer(tmp_path: Path, gz: bool) -> None:
    data = make_tar([F("big", os.urandom(200_000)), F("after")], gz=gz)
    with pytest.raises(ImageError, match=r"truncated|corrupt"):
        unpack(data[: len(data) // 2], tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        unpack(b"hello world" * 100, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_later_entries_win(tmp_path: Path) -> None:
    unpack(make_tar([D("x"), F("x/in"), F("x", b"file now"), F("y", b"1"), D("y")]),
           tmp_path / "d")
    assert tree(tmp_path / "d") == {"x": "file:file now", "y": "dir"}
