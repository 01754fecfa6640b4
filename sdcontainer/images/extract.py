"""Safe, per-entry unpacking of image layers into a directory.

Why not ``tarfile.extractall``: its filters either trust the archive ('fully_trusted')
or reject what real images need ('data' refuses absolute symlinks such as
``usr/bin/python -> /usr/bin/python3``, device nodes and setuid bits), and they
have had several bypasses.  Here every entry is placed by walking its parent path
one component at a time from an fd of the layer root (``openat`` with
``O_NOFOLLOW``), interpreting symlinks ourselves: an absolute target restarts at
the layer root, and a relative target that climbs above the root is refused.  So
nothing outside the root can be reached, whatever the archive contains.

OCI whiteouts become overlayfs whiteouts: ``.wh.NAME`` a char device 0:0 named
NAME and ``.wh..wh..opq`` the xattr ``trusted.overlay.opaque=y`` on its directory,
so the unpacked directory can be used directly as an overlayfs lower layer.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import gzip
import hashlib
import io
import logging
import os
import shutil
import stat
import tarfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sdcontainer.errors import ImageError, UnsafeArchive

logger = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

_CHUNK = 1 << 20
_MAX_SYMLINK_HOPS = 40
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# xattrs a layer may set.  trusted.overlay.* is never taken from an archive: it
# would let a layer forge redirects or opacity in the overlay built on top of it.
_ALLOWED_XATTR_PREFIXES = ("user.", "trusted.", "security.capability", "system.posix_acl_")


@dataclass(frozen=True)
class Limits:
    """Caps that stop decompression bombs and pathological archives."""

    max_bytes: int = 64 << 30
    """Uncompressed bytes of the tar stream, plus the holes of sparse members: what
    an extraction may write, however small the archive."""
    max_entries: int = 2_000_000
    max_seconds: float = 3600.0


@dataclass
class LayerStats:
    """What an extraction produced."""

    diff_id: str = ""
    """sha256 digest of the uncompressed tar stream, as the image config lists it."""
    size: int = 0
    """Bytes of regular file content written."""
    entries: int = 0


class _LimitedReader(io.RawIOBase):
    """Counts, hashes and caps the bytes of the uncompressed stream."""

    def __init__(self, inner: BinaryIO, limits: Limits, what: str) -> None:
        self._inner = inner
        self._limits = limits
        self._deadline = time.monotonic() + limits.max_seconds
        self._what = what
        self.hash = hashlib.sha256()
        self.count = 0
        self.holes = 0
        """Bytes of sparse members' holes admitted so far: never in the stream."""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        self.check_time()
        try:
            data = self._inner.read(len(buf))
        except (EOFError, gzip.BadGzipFile, OSError) as e:
            raise ImageError(f"{self._what}: corrupt or truncated compressed data: {e}") from None
        except Exception as e:
            # zstandard raises its own ZstdError; keep the message on one line.
            raise ImageError(f"{self._what}: corrupt compressed data: {e}") from None
        n = len(data)
        self.count += n
        if self.count + self.holes > self._limits.max_bytes:
            raise UnsafeArchive(
                f"{self._what}: uncompressed size exceeds the limit of "
                f"{self._limits.max_bytes} bytes"
            )
        self.hash.update(data)
        buf[:n] = data
        return n

    def admit(self, m: tarfile.TarInfo, stored: int) -> None:
        """Refuse regular member M, before any of it is written, if the file it makes
        (M.size bytes, STORED of them in the stream) would pass the cap.

        The stream position where its data ends is exact, unlike self.count,
        which includes the read-ahead."""
        holes = m.size - stored
        if m.offset_data + stored + self.holes + holes > self._limits.max_bytes:
            raise UnsafeArchive(
                f"{self._what}: entry {m.name!r} of {m.size} bytes exceeds the limit of "
                f"{self._limits.max_bytes} bytes on what a layer writes"
            )
        self.holes += holes

    def check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise UnsafeArchive(
                f"{self._what}: extraction took longer than {self._limits.max_seconds:g}s"
            )


def open_decompressed(raw: BinaryIO, what: str) -> BinaryIO:
    """Wrap RAW in a decompressor chosen by its magic bytes (gzip, zstd or none)."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(
        _Passthrough(raw), _CHUNK
    )
    head = buffered.peek(4)[:4]
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head == _ZSTD_MAGIC:
        try:
            import zstandard  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ImageError(
                f"{what}: zstd-compressed layers need python3-zstandard"
            ) from None
        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(buffered)
        return reader
    return buffered


class _Passthrough(io.RawIOBase):
    """Adapts any binary file object to RawIOBase so it can be buffered and peeked."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def _clean_name(name: str, what: str) -> list[str]:
    """Split an archive member name into components inside the root.

    A leading '/' is dropped (as docker does); '..' may only go back down what
    the name itself went up, never above the root.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise UnsafeArchive(f"{what}: entry {name!r} escapes the layer root")
            parts.pop()
            continue
        parts.append(comp)
    return parts


@dataclass
class _Extractor:
    root_fd: int
    what: str
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    # Directory metadata is applied last: creating entries inside a directory
    # changes its mtime, and a read-only mode would stop us writing into it.
    dir_meta: list[tuple[list[str], tarfile.TarInfo]] = field(default_factory=list)

    # -- path resolution -------------------------------------------------

    def open_dir(self, comps: list[str], *, create: bool, name: str) -> int:
        """Return an O_PATH fd of the directory COMPS, resolved inside the root.

        Symlinks met on the way are followed by hand: absolute ones restart at
        the root, relative ones may not climb above it.
        """
        stack = [os.dup(self.root_fd)]
        todo = list(comps)
        hops = 0
        try:
            while todo:
                comp = todo.pop(0)
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if len(stack) == 1:
                        raise UnsafeArchive(
                            f"{self.what}: entry {name!r} resolves outside the layer root"
                        )
                    os.close(stack.pop())
                    continue
                try:
                    fd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(comp, 0o755, dir_fd=stack[-1])
                    fd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(fd)
                    continue
                os.close(fd)
                if not stat.S_ISLNK(st.st_mode):
                    raise UnsafeArchive(
                        f"{self.what}: entry {name!r}: {comp!r} is not a directory"
                    )
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise UnsafeArchive(f"{self.what}: entry {name!r}: too many symlinks")
                target = os.readlink(comp, dir_fd=stack[-1])
                if target.startswith("/"):
                    for extra in stack[1:]:
                        os.close(extra)
                    del stack[1:]
                todo = target.split("/") + todo
            result = stack.pop()
            return result
        finally:
            for fd in stack:
                os.close(fd)

    # -- entries ---------------------------------------------------------

    def remove_existing(self, parent: int, base: str, keep_dir: bool) -> bool:
        """Clear the way for a new entry BASE; True if a whiteout was replaced."""
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return False
            shutil.rmtree(base, dir_fd=parent)
            return False
        os.unlink(base, dir_fd=parent)
        return _is_whiteout(st)

    def entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo, limiter: _LimitedReader) -> int:
        """Create one archive member; return the bytes of file content written."""
        comps = _clean_name(member.name, self.what)
        if not comps:
            if member.isdir():
                self.dir_meta.append(([], member))
                return 0
            raise UnsafeArchive(f"{self.what}: entry {member.name!r} would replace the layer root")
        *dirs, base = comps
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(dirs, base, member.name)
            return 0
        parent = self.open_dir(dirs, create=True, name=member.name)
        try:
            return self.create(tf, member, parent, dirs, base, limiter)
        finally:
            os.close(parent)

    def whiteout(self, dirs: list[str], base: str, name: str) -> None:
        parent = self.open_dir(dirs, create=True, name=name)
        try:
            if base == OPAQUE_MARKER:
                _setxattr(parent, None, OVERLAY_OPAQUE_XATTR, b"y")
                return
            if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                # Other .wh..wh. names are aufs bookkeeping (hardlink dirs); docker skips them.
                return
            hidden = base[len(WHITEOUT_PREFIX):]
            if hidden in ("", ".", ".."):
                raise UnsafeArchive(f"{self.what}: invalid whiteout name {name!r}")
            try:
                st = os.stat(hidden, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
                return
            # The layer itself ships NAME too: it already hides the lower NAME if
            # it is not a directory; a directory must stop merging with lower ones.
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(hidden, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                try:
                    _setxattr(fd, None, OVERLAY_OPAQUE_XATTR, b"y")
                finally:
                    os.close(fd)
        finally:
            os.close(parent)

    def create(
        self,
        tf: tarfile.TarFile,
        m: tarfile.TarInfo,
        parent: int,
        dirs: list[str],
        base: str,
        limiter: _LimitedReader,
    ) -> int:
        written = 0
        mode = m.mode & 0o7777
        replaced_whiteout = self.remove_existing(parent, base, keep_dir=m.isdir())
        if m.isreg():
            segments = _sparse_map(m, self.what)
            stored = m.size if segments is None else sum(n for _, n in segments)
            if segments is not None and m.offset_data + stored > tf.offset:
                # More data than the member holds: it would be read from the next header.
                raise UnsafeArchive(f"{self.what}: entry {m.name!r} has an invalid sparse map")
            limiter.admit(m, stored)
            fd = os.open(
                base,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=parent,
            )
            try:
                if segments is not None:
                    written = self.write_sparse(tf, m, segments, fd, limiter)
                else:
                    src = tf.extractfile(m)
                    assert src is not None  # a regular member always has a stream
                    while chunk := src.read(_CHUNK):
                        _write_all(fd, chunk)
                        written += len(chunk)
                        limiter.check_time()
            finally:
                os.close(fd)
        elif m.isdir():
            with contextlib.suppress(FileExistsError):
                os.mkdir(base, 0o700, dir_fd=parent)
            self.dir_meta.append(([*dirs, base], m))
            if replaced_whiteout:
                # A whiteout then a directory of the same name in one layer means
                # "a new directory": the lower one must not show through.
                self.set_xattrs_on(parent, base, {OVERLAY_OPAQUE_XATTR: b"y"})
            return 0
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=parent)
        elif m.islnk():
            self.hardlink(m, parent, base)
            return 0  # the target's metadata is the link's metadata
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=parent)
        else:
            raise ImageError(f"{self.what}: entry {m.name!r} has unsupported type {m.type!r}")
        self.apply_meta(parent, base, m, mode)
        return written

    def write_sparse(self, tf: tarfile.TarFile, m: tarfile.TarInfo,
                     segments: list[tuple[int, int]], fd: int, limiter: _LimitedReader) -> int:
        """Write sparse member M's data segments where they belong, leaving the holes
        as holes (never zeros on disk); return M's size.

        The data lies in the stream in map order from M.offset_data, as
        TarFile.makefile reads it; seeking the stream only ever goes forward."""
        src = tf.fileobj
        src.seek(m.offset_data)
        for offset, numbytes in segments:
            pos, left = offset, numbytes
            while left:
                chunk = src.read(min(left, _CHUNK))
                if not chunk:
                    raise ImageError(f"{self.what}: truncated or corrupt tar: "
                                     f"sparse entry {m.name!r} ends early")
                _write_all(fd, chunk, pos)
                pos += len(chunk)
                left -= len(chunk)
                limiter.check_time()
        os.ftruncate(fd, m.size)
        return m.size

    def hardlink(self, m: tarfile.TarInfo, parent: int, base: str) -> None:
        tcomps = _clean_name(m.linkname, self.what)
        if not tcomps:
            raise UnsafeArchive(f"{self.what}: hardlink {m.name!r} points at the layer root")
        *tdirs, tbase = tcomps
        try:
            tparent = self.open_dir(tdirs, create=False, name=m.linkname)
        except FileNotFoundError:
            raise ImageError(
                f"{self.what}: hardlink {m.name!r} -> {m.linkname!r}: target not in archive"
            ) from None
        try:
            try:
                st = os.stat(tbase, dir_fd=tparent, follow_symlinks=False)
            except FileNotFoundError:
                raise ImageError(
                    f"{self.what}: hardlink {m.name!r} -> {m.linkname!r}: target not in archive"
                ) from None
            if stat.S_ISDIR(st.st_mode) or _is_whiteout(st):
                raise UnsafeArchive(
                    f"{self.what}: hardlink {m.name!r} -> {m.linkname!r}: invalid target"
                )
            # linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself,
            # never what it points to.
            os.link(tbase, base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(tparent)

    def apply_meta(self, parent: int, base: str, m: tarfile.TarInfo, mode: int) -> None:
        # Order matters: chown clears setuid bits and security.capability, so
        # ownership goes first, then mode, then xattrs, then times.
        if self.is_root:
            os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        if not m.issym():
            fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                os.chmod(f"/proc/self/fd/{fd}", mode)
            finally:
                os.close(fd)
        self.set_xattrs_on(parent, base, _xattrs_of(m))
        mtime_ns = int(m.mtime * 1_000_000_000)
        os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)

    def set_xattrs_on(self, parent: int, base: str, xattrs: dict[str, bytes]) -> None:
        if not xattrs:
            return
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            for key, value in xattrs.items():
                _setxattr(parent, (fd, base), key, value)
        finally:
            os.close(fd)

    def finish_dirs(self) -> None:
        for comps, m in reversed(self.dir_meta):
            if comps:
                *dirs, base = comps
                parent = self.open_dir(dirs, create=False, name=m.name)
                try:
                    st = os.stat(base, dir_fd=parent, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        continue  # replaced by a later entry
                    self.apply_meta(parent, base, m, m.mode & 0o7777)
                finally:
                    os.close(parent)
            else:
                # O_PATH fds refuse fchown/fchmod; their /proc magic link does not.
                root = f"/proc/self/fd/{self.root_fd}"
                if self.is_root:
                    os.chown(root, m.uid, m.gid)
                os.chmod(root, m.mode & 0o7777)
                for key, value in _xattrs_of(m).items():
                    _setxattr(self.root_fd, None, key, value)
                mtime_ns = int(m.mtime * 1_000_000_000)
                os.utime(root, ns=(mtime_ns, mtime_ns))


def _write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[n:]
        if offset is not None:
            offset += n


def _sparse_map(m: tarfile.TarInfo, what: str) -> list[tuple[int, int]] | None:
    """The (offset, length) data segments of a sparse member, checked; None if M is
    not sparse.

    Sparse members (GNU tar's old 'S' type and the PAX 0.0, 0.1 and 1.0 forms)
    are accepted, as docker's Go archive/tar reads them; tarfile reports M.size as
    the real size, which the cap counts, holes included.  The segments must lie
    in order, without overlap, inside that size: a map that does not is a crafted
    one."""
    raw: Any = m.sparse  # typeshed says bytes; tarfile keeps a list of pairs
    if raw is None:
        return None
    segments: list[tuple[int, int]] = []
    end = 0
    for entry in raw:
        offset, numbytes = entry
        if not (isinstance(offset, int) and isinstance(numbytes, int)) or offset < 0 \
                or numbytes < 0:
            raise UnsafeArchive(f"{what}: entry {m.name!r} has an invalid sparse map")
        if numbytes == 0:
            continue  # GNU tar's end marker (realsize, 0) and unused (0, 0) slots
        if offset < end or offset + numbytes > m.size:
            raise UnsafeArchive(f"{what}: entry {m.name!r} has an invalid sparse map")
        segments.append((offset, numbytes))
        end = offset + numbytes
    return segments


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def _setxattr(dir_fd: int, entry: tuple[int, str] | None, key: str, value: bytes) -> None:
    """Set an xattr on the directory DIR_FD, or on ENTRY (fd, name) inside it.

    The path goes through /proc/self/fd so no symlink in the layer is followed:
    a symlink entry gets the xattr itself (lsetxattr).
    """
    if entry is None:
        path = f"/proc/self/fd/{dir_fd}"
        follow = True
    else:
        fd, name = entry
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            path, follow = f"/proc/self/fd/{dir_fd}/{name}", False
        else:
            path, follow = f"/proc/self/fd/{fd}", True
    try:
        os.setxattr(path, key, value, follow_symlinks=follow)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EPERM) and key.startswith("user."):
            logger.debug("cannot set %s on %s: %s", key, path, e)
            return
        raise


def _xattrs_of(m: tarfile.TarInfo) -> dict[str, bytes]:
    """The xattrs recorded in the member's PAX headers (GNU tar and libarchive forms)."""
    out: dict[str, bytes] = {}
    for key, value in m.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            name = key[len("SCHILY.xattr."):]
            raw = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            try:
                raw = base64.b64decode(value + "=" * (-len(value) % 4))
            except ValueError:
                continue
        else:
            continue
        if name.startswith("trusted.overlay."):
            continue
        if name.startswith(_ALLOWED_XATTR_PREFIXES):
            out[name] = raw
    return out


def extract_layer(
    source: BinaryIO,
    dest: Path,
    *,
    limits: Limits | None = None,
    what: str = "layer",
    compressed: bool = True,
) -> LayerStats:
    """Unpack the layer tarball SOURCE into DEST, which must not exist yet.

    SOURCE may be gzip- or zstd-compressed (detected from its first bytes) when
    COMPRESSED is true.  DEST is created mode 0755 (the tar's root entry may
    change that).  On any error DEST is removed and UnsafeArchive or ImageError
    raised; WHAT names the layer in error messages.
    """
    limits = limits or Limits()
    stream = open_decompressed(source, what) if compressed else source
    limiter = _LimitedReader(stream, limits, what)
    reader = io.BufferedReader(limiter, _CHUNK)
    os.mkdir(dest, 0o755)
    stats = LayerStats()
    try:
        root_fd = os.open(dest, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            ex = _Extractor(root_fd, what)
            try:
                tf = tarfile.open(  # noqa: SIM115 - closed by the with below
                    fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape",
                    tarinfo=_BoundedTarInfo,
                )
            except tarfile.ReadError as e:
                raise ImageError(f"{what}: not a tar archive: {e}") from None
            except _HeaderTooLarge as e:  # the first member is read by open
                raise UnsafeArchive(f"{what}: {e}") from None
            except (tarfile.TarError, ValueError) as e:
                raise ImageError(f"{what}: truncated or corrupt tar: {e}") from None
            with tf:
                for member in _MemberIter(tf, what):
                    stats.entries += 1
                    if stats.entries > limits.max_entries:
                        raise UnsafeArchive(f"{what}: more than {limits.max_entries} entries")
                    limiter.check_time()
                    try:
                        stats.size += ex.entry(tf, member, limiter)
                    except (tarfile.TarError, EOFError) as e:
                        raise ImageError(f"{what}: truncated or corrupt tar: {e}") from None
                    except OSError as e:
                        raise ImageError(
                            f"{what}: cannot create {member.name!r}: {e.strerror or e}"
                        ) from None
                ex.finish_dirs()
        finally:
            os.close(root_fd)
        # The diff_id covers the whole uncompressed stream, including the
        # zero blocks tarfile stops before.
        while reader.read(_CHUNK):
            pass
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    stats.diff_id = "sha256:" + limiter.hash.hexdigest()
    return stats


class _HeaderTooLarge(Exception):
    """Header processing of one member read more than a sane header holds."""


# Go's archive/tar (docker) refuses a PAX header or GNU long name over 1 MiB.
_MAX_META = 1 << 20
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
               tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
# What the headers of one member may make tarfile read: a few chained meta
# headers (global and extended PAX, long name and link) and a sparse map.
_MAX_HEADER_READ = 8 * _MAX_META
_MAX_HEADER_CHAIN = 16


class _HeaderBudget:
    """The stream as tarfile sees it while it parses one member's headers: reads past
    BUDGET bytes, or headers chained too deep, stop the parse.

    tarfile holds what it parses in memory and has no bounds of its own: a PAX
    header is read whole, a GNU 1.0 sparse map (in the member's data) and old GNU
    sparse extension blocks are read until they say they end."""

    def __init__(self, inner: Any, budget: int) -> None:
        self._inner = inner
        self.depth: int = inner.depth + 1 if isinstance(inner, _HeaderBudget) else 1
        if self.depth > _MAX_HEADER_CHAIN:
            raise _HeaderTooLarge(f"more than {_MAX_HEADER_CHAIN} chained tar headers")
        self._left = budget

    def read(self, size: int) -> bytes:
        self._left -= size
        if self._left < 0:
            raise _HeaderTooLarge(
                f"tar headers or a sparse map larger than {_MAX_HEADER_READ} bytes"
            )
        data: bytes = self._inner.read(size)
        return data

    def tell(self) -> int:
        pos: int = self._inner.tell()
        return pos

    def seek(self, pos: int) -> object:
        return self._inner.seek(pos)

    def write(self, b: bytes) -> object:
        raise tarfile.StreamError("read-only")

    def close(self) -> object:
        return None


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose header parsing holds a bounded amount in memory."""

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        # tarfile documents _proc_member as the hook a subclass overrides.
        proc = tarfile.TarInfo._proc_member  # type: ignore[attr-defined]
        if self.type in _META_TYPES and self.size > _MAX_META:
            raise _HeaderTooLarge(f"a tar meta header of {self.size} bytes "
                                  f"(the limit is {_MAX_META})")
        if self.type not in (*_META_TYPES, tarfile.GNUTYPE_SPARSE):
            member: tarfile.TarInfo = proc(self, tf)
            return member
        stream = tf.fileobj
        tf.fileobj = _HeaderBudget(stream, _MAX_HEADER_READ)
        try:
            member = proc(self, tf)
        finally:
            tf.fileobj = stream
        return member


class _MemberIter:
    """Iterates a streamed tar, turning tarfile's errors into one-line ImageErrors."""

    def __init__(self, tf: tarfile.TarFile, what: str) -> None:
        self._tf = tf
        self._what = what

    def __iter__(self) -> _MemberIter:
        return self

    def __next__(self) -> tarfile.TarInfo:
        try:
            member = self._tf.next()
        except _HeaderTooLarge as e:
            raise UnsafeArchive(f"{self._what}: {e}") from None
        except (tarfile.TarError, EOFError, ValueError) as e:
            # ValueError: tarfile's parsers of sparse maps take int() of what they find.
            raise ImageError(f"{self._what}: truncated or corrupt tar: {e}") from None
        if member is None:
            raise StopIteration
        return member


def remove_tree(path: Path) -> None:
    """Remove an unpacked layer, including read-only directories inside it."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
