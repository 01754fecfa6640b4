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


class OciLayout:
    """Builds an OCI image layout directory for skopeo to push or archive."""

    def __init__(self, root: Path) -> None:
        import json

        self.root = root
        self.json = json
        (root / "blobs/sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.index: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        import hashlib

        h = hashlib.sha256(data).hexdigest()
        (self.root / "blobs/sha256" / h).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{h}", "size": len(data)}

    def image(self, layers: list[bytes], *, arch: str = "amd64",
              config: dict[str, object] | None = None) -> dict[str, object]:
        """Add an image from uncompressed layer tars (stored gzipped); return its manifest."""
        import hashlib

        descs = [self.blob(gzip.compress(t, mtime=0),
                           "application/vnd.oci.image.layer.v1.tar+gzip") for t in layers]
        cfg = {
            "architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": config or {},
            "rootfs": {"type": "layers",
                       "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]},
        }
        cdesc = self.blob(self.json.dumps(cfg).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cdesc, "layers": descs}
        mdesc = self.blob(self.json.dumps(manifest).encode(), manifest["mediaType"])
        mdesc["platform"] = {"os": "linux", "architecture": arch}
        return mdesc

    def multi(self, manifests: list[dict[str, object]]) -> dict[str, object]:
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": manifests}
        return self.blob(self.json.dumps(index).encode(), index["mediaType"])

    def tag(self, desc: dict[str, object], name: str) -> None:
        entry = {k: v for k, v in desc.items() if k != "platform"}
        entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.index.append(entry)
        (self.root / "index.json").write_text(self.json.dumps(
            {"schemaVersion": 2, "manifests": self.index}))
