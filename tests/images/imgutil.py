"""Helpers shared by the image tests: crafted tarballs and a tree snapshot."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@dataclass
class Entry:
    """One member of a crafted tarball."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def F(name: str, data: bytes = b"x", **kw: object) -> Entry:
    return Entry(name, tarfile.REGTYPE, data, **kw)  # type: ignore[arg-type]


def D(name: str, **kw: object) -> Entry:
    kw.setdefault("mode", 0o755)
    return Entry(name, tarfile.DIRTYPE, **kw)  # type: ignore[arg-type]


def S(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def H(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, linkname=target)


def make_tar(entries: Iterable[Entry], *, gz: bool = False) -> bytes:
    """A tarball holding ENTRIES in order, exactly as given (no name cleaning)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.type = e.type
            ti.mode = e.mode
            ti.uid, ti.gid = e.uid, e.gid
            ti.mtime = e.mtime
            ti.linkname = e.linkname
            ti.devmajor, ti.devminor = e.devmajor, e.devminor
            ti.pax_headers = dict(e.pax)
            if e.type == tarfile.REGTYPE:
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
            else:
                tf.addfile(ti)
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int, bytes | str | None]]:
    """Everything observable about a tree: type, mode, owner, mtime, content."""
    out: dict[str, tuple[int, int, int, int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames]:
            p = Path(dirpath, name)
            st = p.lstat()
            content: bytes | str | None = None
            if stat.S_ISREG(st.st_mode):
                content = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_mtime_ns,
                                             st.st_nlink, content)
    return out


def tree(root: Path) -> dict[str, str]:
    """A compact description of ROOT: 'dir', 'file:<content>', 'link:<target>', 'whiteout'."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISDIR(st.st_mode):
                opaque = b""
                with contextlib.suppress(OSError):
                    opaque = os.getxattr(p, "trusted.overlay.opaque")
                out[rel] = "dir,opaque" if opaque == b"y" else "dir"
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out[rel] = "whiteout"
            elif stat.S_ISREG(st.st_mode):
                out[rel] = "file:" + p.read_bytes().decode(errors="replace")
            else:
                out[rel] = oct(stat.S_IFMT(st.st_mode))
    return out
