"""COPY and ADD: the files a step adds, staged in a directory that becomes its layer.

Sources come from a `MergedTree`: the build context (one plain directory) or
another stage's or image's layers (``--from``).  The destination is resolved in the
image being built, through its symlinks, and the parent directories the layer must
carry take their metadata from that image, as an overlay copy-up would.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidArgument
from ..extract import Limits
from ..layerdiff import MergedTree


@dataclass(frozen=True)
class Owner:
    """Who the copied files belong to; None keeps the source's owners (COPY --from)."""

    uid: int
    gid: int


def match(tree: MergedTree, pattern: str) -> list[str]:
    """Relative paths in TREE matching PATTERN (Go filepath.Match per component; ``*``
    matches dotfiles, as with docker)."""
    parts = [p for p in posixpath.normpath("/" + pattern).split("/") if p]
    if not parts:
        return [""]
    found = [""]
    for part in parts:
        nxt: list[str] = []
        for base in found:
            if not any(c in part for c in "*?["):
                cand = f"{base}/{part}" if base else part
                if tree.lookup(tree.resolve(cand, follow_last=False)) is not None:
                    nxt.append(cand)
                continue
            for name in sorted(tree.listdir(tree.resolve(base))):
                if fnmatch.fnmatchcase(name, part):
                    nxt.append(f"{base}/{name}" if base else name)
        found = nxt
    return found


def _set_meta(path: str, st: os.stat_result, owner: Owner | None, mode: int | None) -> None:
    uid, gid = (owner.uid, owner.gid) if owner else (st.st_uid, st.st_gid)
    os.lchown(path, uid, gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, mode if mode is not None else stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_one(real: str, st: os.stat_result, dst: str, owner: Owner | None,
              mode: int | None) -> None:
    if os.path.lexists(dst) and not (stat.S_ISDIR(st.st_mode) and os.path.isdir(dst)):
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        else:
            os.unlink(dst)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(dst, exist_ok=True)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(real), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(real, dst, follow_symlinks=False)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        os.mknod(dst, st.st_mode, st.st_rdev)
    else:
        return
    _set_meta(dst, st, owner, mode)


class Stager:
    """Builds the directory STAGE of files a COPY/ADD adds on top of image tree IMAGE."""

    def __init__(self, stage: Path, image: MergedTree) -> None:
        self.stage = stage
        self.image = image
        stage.mkdir(mode=0o755, exist_ok=True)

    def ensure_dir(self, rel: str, owner: Owner | None = None) -> str:
        """Make directory REL (resolved) exist in the stage; parents copy the image's
        metadata where the image has them.  Returns the resolved path."""
        rel = self.image.resolve(rel)
        done = ""
        for part in [p for p in rel.split("/") if p]:
            done = f"{done}/{part}" if done else part
            path = os.path.join(self.stage, done)
            if os.path.isdir(path):
                continue
            found = self.image.lookup(done)
            os.mkdir(path, 0o755)
            if found is not None and stat.S_ISDIR(found[1].st_mode):
                _set_meta(path, found[1], None, None)
            elif found is not None:
                raise InvalidArgument(f"cannot copy to /{done}: it is not a directory")
            elif owner is not None:
                os.lchown(path, owner.uid, owner.gid)
        return rel

    def is_dir(self, rel: str) -> bool:
        """Whether REL is (or will be, in the stage) a directory of the image."""
        rel = self.image.resolve(rel)
        if os.path.isdir(os.path.join(self.stage, rel)):
            return True
        found = self.image.lookup(rel)
        return found is not None and stat.S_ISDIR(found[1].st_mode)

    def copy(self, tree: MergedTree, src: str, dest: str, *, into_dir: bool,
             owner: Owner | None, mode: int | None) -> None:
        """Copy SRC of TREE: a directory's contents into DEST; a file to DEST, or into it
        when INTO_DIR."""
        found = tree.lookup(src)
        if found is None:
            raise InvalidArgument(f"COPY failed: file not found in build context or "
                                  f"excluded by .dockerignore: stat {src}: file does not exist")
        real, st = found
        if stat.S_ISDIR(st.st_mode):
            base = self.ensure_dir(dest, owner)
            for rel, sub_real, sub_st in tree.walk(src):
                inner = rel[len(src):].lstrip("/") if src else rel
                _copy_one(sub_real, sub_st, os.path.join(self.stage, base, inner), owner,
                          mode)
            return
        if into_dir:
            base = self.ensure_dir(dest, owner)
            target = posixpath.join(base, posixpath.basename(src))
        else:
            parent = self.ensure_dir(posixpath.dirname(dest.rstrip("/")) or "/", owner)
            target = posixpath.join(parent, posixpath.basename(dest.rstrip("/")))
        _copy_one(real, st, os.path.join(self.stage, target), owner, mode)

    def extract(self, archive: str, dest: str, owner: Owner | None, limits: Limits) -> bool:
        """ADD's local archive: unpack ARCHIVE into DEST; False if it is no archive."""
        if not _is_archive(archive):
            return False
        base = self.ensure_dir(dest, owner)
        tmp = self.stage.parent / (self.stage.name + ".add")
        try:
            with open(archive, "rb") as f:
                from .context import unpack

                unpack(f, tmp, limits)
            for rel, real, st in MergedTree([tmp]).walk(""):
                _copy_one(real, st, os.path.join(self.stage, base, rel), owner, None)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True


def _is_archive(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return True
    with contextlib.suppress(OSError, tarfile.TarError):
        return tarfile.is_tarfile(path)
    return False
