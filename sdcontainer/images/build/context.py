"""The build context: unpacking the uploaded tar and docker's .dockerignore rules."""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import posixpath
import re
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO, cast

from ...errors import InvalidArgument
from ..extract import Limits, extract_layer

_BZ2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"


def _decompressor(src: BinaryIO) -> BinaryIO:
    """SRC, wrapped in bzip2 or xz when it starts like one (gzip/zstd the extractor knows)."""
    buffered: Any = src if isinstance(src, io.BufferedReader) else io.BufferedReader(
        cast(Any, src))
    head = buffered.peek(6)[:6]
    if head.startswith(_BZ2):
        return cast(BinaryIO, bz2.BZ2File(buffered))
    if head.startswith(_XZ):
        return cast(BinaryIO, lzma.LZMAFile(buffered))
    return cast(BinaryIO, buffered)


def unpack(src: BinaryIO, dest: Path, limits: Limits | None = None) -> None:
    """Unpack the context tar SRC (plain, gzip, bzip2, xz or zstd) into DEST (must not exist).

    The layer extractor does it: it never writes outside DEST, whatever the tar holds.
    """
    extract_layer(_decompressor(src), dest, limits=limits, what="build context")


class Ignore:
    """docker's .dockerignore: patterns matched against slash-separated context paths.

    Each pattern is cleaned like Go's filepath.Clean with the leading slash removed;
    ``*`` and ``?`` stay inside one component, ``**`` crosses any number; ``!`` makes
    an exception; the last matching pattern decides.  A path is excluded when it or
    any of its parent directories matches.
    """

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = posixpath.normpath(line).lstrip("/")
            if line in ("", "."):
                continue
            self.rules.append((negate, re.compile(_regex(line))))

    def excluded(self, path: str) -> bool:
        """Whether context path PATH (relative, slash-separated) is left out.

        As docker's MatchesOrParentMatches: each pattern in turn matches the path or
        one of its parent directories, and the last to match decides."""
        parts = path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for negate, rx in self.rules:
            if any(rx.fullmatch(p) for p in prefixes):
                excluded = not negate
        return excluded


def _regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise InvalidArgument(f".dockerignore: bad pattern {pattern!r}")
            cls = pattern[i + 1:j]
            out += "[" + ("^" + cls[1:] if cls.startswith("^") else cls) + "]"
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return out


def apply_ignore(root: Path, ignore: Ignore) -> None:
    """Delete from ROOT (an unpacked context) everything IGNORE excludes."""
    if not ignore.rules:
        return
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if ignore.excluded(rel):
                p = os.path.join(dirpath, name)
                if name in dirnames and not os.path.islink(p):
                    # An exception may still want something inside: keep the directory
                    # and decide for its children.
                    if any(neg for neg, _ in ignore.rules):
                        continue
                    shutil.rmtree(p)
                    dirnames.remove(name)
                else:
                    os.unlink(p)


def checksum(sources: list[tuple[str, Path]]) -> str:
    """A digest of the names, content, modes and owners of SOURCES ((name as written in
    the context, real path) pairs), not their times: a COPY's cache entry survives a
    touch but not an edit."""
    h = hashlib.sha256()
    for name, top in sources:
        items = [top]
        if top.is_dir() and not top.is_symlink():
            items += sorted(top.rglob("*"))
        for p in items:
            st = p.lstat()
            rel = f"{name}/{p.relative_to(top)}"
            h.update(f"{rel}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\0")
    return "sha256:" + h.hexdigest()
