"""Overlay directories as OCI layers: diff tars, change lists, and the merged view.

An overlayfs upper directory marks a deletion with a character device 0:0 and a
directory that hides everything below with ``trusted.overlay.opaque=y``; the OCI
image spec says ``.wh.NAME`` and ``.wh..wh..opq``.  `write_layer` translates, and
the unpacked layers of the store use overlay's form (extract.py), so the same
`MergedTree` reads both the store's layers and a container's upper directory.

Tars are written with entries sorted by name, numeric owners, no user or group
names and no access/change times, so the same tree always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .extract import OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX

_KEEP_XATTRS = ("security.capability", "user.", "system.posix_acl_")


def is_whiteout(st: os.stat_result) -> bool:
    """An overlayfs whiteout: a character device 0:0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    """Whether directory PATH hides the layers below it."""
    for key in (OVERLAY_OPAQUE_XATTR, "user.overlay.opaque"):
        with contextlib.suppress(OSError):
            if os.getxattr(path, key, follow_symlinks=False) == b"y":
                return True
    return False


class MergedTree:
    """The union of overlay layer directories (lowest first), read without mounting."""

    def __init__(self, layers: Sequence[Path | str]) -> None:
        self.top_first = [str(p) for p in reversed(layers)]

    def _stack(self, rel: str) -> list[str]:
        """The layer roots whose copy of directory REL is visible, top first."""
        stack = list(self.top_first)
        parts = [p for p in rel.split("/") if p]
        for n in range(len(parts)):
            prefix = "/".join(parts[:n + 1])
            visible: list[str] = []
            for root in stack:
                try:
                    st = os.lstat(os.path.join(root, prefix))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    if not visible:
                        return []  # a file or whiteout on top: no directory here
                    break
                visible.append(root)
                if is_opaque(os.path.join(root, prefix)):
                    break
            stack = visible
            if not stack:
                return []
        return stack

    def lookup(self, rel: str) -> tuple[str, os.stat_result] | None:
        """The real path and lstat of REL in the merged view (no symlinks followed)."""
        rel = rel.strip("/")
        if not rel:
            return (self.top_first[0], os.lstat(self.top_first[0])) if self.top_first else None
        parent, _, name = rel.rpartition("/")
        for root in self._stack(parent):
            p = os.path.join(root, parent, name)
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                continue
            return None if is_whiteout(st) else (p, st)
        return None

    def listdir(self, rel: str) -> dict[str, tuple[str, os.stat_result]]:
        """The visible entries of directory REL: name -> (real path, lstat)."""
        rel = rel.strip("/")
        out: dict[str, tuple[str, os.stat_result]] = {}
        hidden: set[str] = set()
        for root in self._stack(rel):
            d = os.path.join(root, rel)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for name in os.listdir(d):
                    if name in out or name in hidden:
                        continue
                    st = os.lstat(os.path.join(d, name))
                    if is_whiteout(st):
                        hidden.add(name)
                    else:
                        out[name] = (os.path.join(d, name), st)
        return out

    def walk(self, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
        """(relative path, real path, lstat) of REL's visible contents, sorted, depth first."""
        rel = rel.strip("/")
        for name, (real, st) in sorted(self.listdir(rel).items()):
            sub = f"{rel}/{name}" if rel else name
            yield sub, real, st
            if stat.S_ISDIR(st.st_mode):
                yield from self.walk(sub)

    def resolve(self, rel: str, *, follow_last: bool = True) -> str:
        """REL with the symlinks of its directories resolved inside the tree (as a
        container would see them); the last component too if FOLLOW_LAST."""
        parts = [p for p in rel.split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            cand = "/".join([*done, name])
            found = self.lookup(cand)
            if found and stat.S_ISLNK(found[1].st_mode) and (parts or follow_last):
                hops += 1
                if hops > 40:
                    break
                target = os.readlink(found[0])
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            done.append(name)
        return "/".join(done)


# What the launcher makes in every container's upper directory to mount onto (docker
# keeps these in its "init" layer, which commits and diffs leave out).
LAUNCHER_MOUNT_POINTS = ("proc", "sys", "dev", "etc/hostname", "etc/hosts", "etc/resolv.conf")


def mount_points(upper: Path, lower: MergedTree, targets: Iterable[str]) -> frozenset[str]:
    """The entries of UPPER that exist only as mount points: each of TARGETS the lower
    layers lack and that is an empty file or directory, and the directories that hold
    nothing else.  Layers and change lists leave them out."""
    out: set[str] = set()
    for target in targets:
        rel = target.strip("/")
        p = os.path.join(upper, rel)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        empty = (stat.S_ISREG(st.st_mode) and st.st_size == 0) or (
            stat.S_ISDIR(st.st_mode) and not os.listdir(p))
        if rel and empty and lower.lookup(rel) is None:
            out.add(rel)
    for rel in sorted(out, key=lambda r: -r.count("/")):
        parent = os.path.dirname(rel)
        while parent and parent not in out:
            pp = os.path.join(upper, parent)
            if is_opaque(pp) or not all(f"{parent}/{n}" in out for n in os.listdir(pp)):
                break
            out.add(parent)
            parent = os.path.dirname(parent)
    return frozenset(out)


@dataclass(frozen=True)
class Change:
    """One entry of `GET /containers/{id}/changes`: Kind 0 modified, 1 added, 2 deleted."""

    path: str
    kind: int


def changes(upper: Path, lower: MergedTree, skip: frozenset[str] = frozenset()) -> list[Change]:
    """What the upper directory UPPER changed on top of LOWER, sorted by path; SKIP
    holds relative paths to leave out (`mount_points`)."""
    out: list[Change] = []

    def visit(rel: str, opaque_below: bool) -> None:
        d = os.path.join(upper, rel)
        for name in sorted(os.listdir(d)):
            sub = f"{rel}/{name}" if rel else name
            if sub in skip:
                continue
            p = os.path.join(d, name)
            st = os.lstat(p)
            if is_whiteout(st):
                if not opaque_below and lower.lookup(sub) is not None:
                    out.append(Change("/" + sub, 2))
                continue
            existed = not opaque_below and lower.lookup(sub) is not None
            out.append(Change("/" + sub, 0 if existed else 1))
            if stat.S_ISDIR(st.st_mode):
                opaque = is_opaque(p)
                if opaque and existed:
                    # Everything the lower layers had here is gone.
                    for gone in sorted(lower.listdir(sub)):
                        if not os.path.lexists(os.path.join(p, gone)):
                            out.append(Change(f"/{sub}/{gone}", 2))
                visit(sub, opaque_below or opaque)

    visit("", False)
    return sorted(out, key=lambda c: c.path)


def _tarinfo(name: str, real: str, st: os.stat_result, id_shift: int,
             clamp: int | None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid = max(st.st_uid - id_shift, 0) if id_shift else st.st_uid
    ti.gid = max(st.st_gid - id_shift, 0) if id_shift else st.st_gid
    ti.uname = ti.gname = ""
    mtime = int(st.st_mtime)
    ti.mtime = min(mtime, clamp) if clamp is not None else mtime
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(real)
    elif stat.S_ISREG(st.st_mode):
        ti.type = tarfile.REGTYPE
        ti.size = st.st_size
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    else:
        raise ValueError(f"{name}: a socket cannot go in a layer")
    xattrs: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for key in sorted(os.listxattr(real, follow_symlinks=False)):
            if key.startswith(_KEEP_XATTRS) and not key.startswith("user.overlay."):
                value = os.getxattr(real, key, follow_symlinks=False)
                xattrs["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    ti.pax_headers = xattrs
    return ti


def write_layer(root: Path, out: BinaryIO, *, id_shift: int = 0,
                clamp_mtime: int | None = None, overlay: bool = True,
                skip: frozenset[str] = frozenset()) -> None:
    """Write directory ROOT as an uncompressed OCI layer tar to OUT.

    With OVERLAY, ROOT is an overlay upper directory: whiteouts and opaque
    directories become ``.wh.`` entries.  ID_SHIFT is subtracted from owners (a
    container with its own user namespace); CLAMP_MTIME caps every time (the build
    arg SOURCE_DATE_EPOCH).  Hard links within ROOT stay hard links.  SKIP holds
    relative paths to leave out (`mount_points`).
    """
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tf:

        def visit(rel: str) -> None:
            d = os.path.join(root, rel)
            for name in sorted(os.listdir(d)):
                sub = f"{rel}/{name}" if rel else name
                if sub in skip:
                    continue
                real = os.path.join(d, name)
                st = os.lstat(real)
                if overlay and is_whiteout(st):
                    wh = tarfile.TarInfo(f"{rel}/{WHITEOUT_PREFIX}{name}" if rel
                                         else WHITEOUT_PREFIX + name)
                    wh.mtime = 0
                    wh.mode = 0o644
                    tf.addfile(wh)
                    continue
                if stat.S_ISSOCK(st.st_mode):
                    continue  # docker drops sockets too
                ti = _tarinfo(sub, real, st, id_shift, clamp_mtime)
                _add(tf, ti, real, st, seen)
                if ti.isdir():
                    if overlay and is_opaque(real):
                        op = tarfile.TarInfo(f"{sub}/{OPAQUE_MARKER}")
                        op.mtime = 0
                        op.mode = 0o644
                        tf.addfile(op)
                    visit(sub)

        visit("")


def _add(tf: tarfile.TarFile, ti: tarfile.TarInfo, real: str, st: os.stat_result,
         seen: dict[tuple[int, int], str]) -> None:
    """Add TI, the entry of file REAL; a later name of a hard-linked file (SEEN maps each
    inode to its first name) becomes a link to the first, as docker's layers have it."""
    if ti.isreg() and st.st_nlink > 1:
        key = (st.st_dev, st.st_ino)
        if key in seen:
            ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, seen[key], 0
            tf.addfile(ti)
            return
        seen[key] = ti.name
    if ti.isreg():
        with open(real, "rb") as f:
            tf.addfile(ti, f)
    else:
        tf.addfile(ti)


def write_merged(tree: MergedTree, out: BinaryIO, *, id_shift: int = 0) -> None:
    """Write the merged view TREE as one plain tar (``docker export``)."""
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tf:
        for rel, real, st in tree.walk(""):
            if stat.S_ISSOCK(st.st_mode):
                continue
            _add(tf, _tarinfo(rel, real, st, id_shift, None), real, st, seen)
