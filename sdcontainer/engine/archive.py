"""Files in and out of a container (`docker cp`): stat, tar out, tar in.

Every path is resolved inside the container's root with openat2(RESOLVE_IN_ROOT),
so a symlink in the container (absolute, relative, swapped in meanwhile) can never
lead outside it; below the resolved top, names come from listing directories and
are opened with O_NOFOLLOW relative to their parent's fd.

The root is, for a running container, its own view (/proc/PID/root: its overlay
with its volumes and binds mounted).  For a stopped one it is the overlay mounted
*detached* (fsopen/fsmount: attached nowhere, gone when its fd is closed, so no
mount is ever left behind), or, for a path under one of its volumes or binds, that
mount's source directory.  Everything here blocks: the engine runs it in threads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import errno
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, TypeVar

from ..errors import InvalidArgument, NotFound, PermissionDenied, SdcError
from ..runtime import syscalls as sc
from ..runtime.launcher import mounts
from .records import Container

if TYPE_CHECKING:
    from .core import Engine

T = TypeVar("T")

IN_ROOT = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# A running container's kernel filesystems are not its files.
SKIP_TOP = ("proc", "sys", "dev")

# Go's os.FileMode bits, which docker's stat header carries.
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE = 1 << 31, 1 << 27, 1 << 26, 1 << 25
GO_SOCKET, GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 24, 1 << 23, 1 << 22, 1 << 21, 1 << 20


@dataclass(frozen=True)
class PathStat:
    """docker's ContainerPathStat."""

    name: str
    size: int
    mode: int  # Go's FileMode
    mtime: str
    link_target: str

    def header(self) -> str:
        """The X-Docker-Container-Path-Stat header's value."""
        return base64.b64encode(json.dumps({
            "name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
            "linkTarget": self.link_target}).encode()).decode()


def go_mode(st: os.stat_result) -> int:
    """ST's mode as Go's os.FileMode."""
    m, mode = st.st_mode, stat.S_IMODE(st.st_mode) & 0o777
    kinds = {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFIFO: GO_PIPE,
             stat.S_IFSOCK: GO_SOCKET, stat.S_IFBLK: GO_DEVICE,
             stat.S_IFCHR: GO_DEVICE | GO_CHARDEV}
    mode |= kinds.get(stat.S_IFMT(m), 0)
    for bit, go in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID),
                    (stat.S_ISVTX, GO_STICKY)):
        if m & bit:
            mode |= go
    return mode


def rfc3339(seconds: float) -> str:
    """A file time as Go's time.Time marshals it."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat().replace(
        "+00:00", "Z")


@dataclass
class Root:
    """An open view of a container's files: FD is its / for openat2, BASE the
    container path it stands for (a volume's target, or /)."""

    fd: int
    base: str
    container: str

    @property
    def path(self) -> str:
        """FD as a path (a magic link: for lexical lookups that report, never act)."""
        return f"/proc/self/fd/{self.fd}"

    def inner(self, path: str) -> str:
        """Container path PATH relative to this root."""
        return "/" + os.path.relpath(norm(path), self.base).removeprefix(".")

    def missing(self, path: str) -> NotFound:
        """docker's 404 for PATH."""
        return NotFound(f"Could not find the file {path} in container {self.container}")

    def resolve(self, path: str) -> str:
        """PATH with its symlinks resolved in this root (for reports: linkTarget)."""
        inside = os.path.relpath(mounts.resolve_in_root(self.path, self.inner(path)), self.path)
        return os.path.normpath(os.path.join(self.base, inside))

    def open(self, path: str, flags: int) -> int:
        """openat2 of PATH (a container path) confined to this root."""
        try:
            return sc.openat2(self.fd, self.inner(path).lstrip("/") or ".", flags, IN_ROOT)
        except FileNotFoundError:
            raise self.missing(path) from None
        except NotADirectoryError:
            raise InvalidArgument(f"{path}: not a directory in container "
                                  f"{self.container}") from None
        except OSError as e:
            raise SdcError(f"{path} in container {self.container}: {e.strerror}") from e

    def parent(self, path: str) -> tuple[int, str]:
        """An O_PATH fd of PATH's parent directory, and PATH's last name ("" for /)."""
        p = norm(path)
        head, name = os.path.split(p)
        if p == self.base or p == "/":
            return self.open(p, os.O_PATH | os.O_DIRECTORY), ""
        return self.open(head, os.O_PATH | os.O_DIRECTORY), name


def norm(path: str) -> str:
    """An absolute, lexically clean container path."""
    return os.path.normpath("/" + path.lstrip("/"))


def follows(path: str) -> bool:
    """Whether PATH asks for its last symlink followed (a trailing / or /.)."""
    return path.endswith(("/", "/."))


@contextlib.contextmanager
def open_root(c: Container, layers: list[str], path: str) -> Iterator[Root]:
    """The root to reach PATH of C through (see the module's docstring)."""
    if c.running:
        fd = os.open(f"/proc/{c.state.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        base = "/"
    else:
        p, fd, base = norm(path), -1, "/"
        binds = sorted((m for m in c.config.mounts if m.type in ("bind", "volume")),
                       key=lambda m: len(norm(m.target)), reverse=True)
        for m in binds:
            t = norm(m.target)
            if (p == t or p.startswith(t + "/")) and os.path.isdir(m.source):
                fd = os.open(m.source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                base = t
                break
        if fd < 0:
            options = [("lowerdir+", layer) for layer in reversed(layers)]
            options += [("upperdir", str(c.dir / "upper")), ("workdir", str(c.dir / "work"))]
            try:
                try:
                    fd = sc.detached_mount("overlay", options)
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    fd = _overlay_then_detach(c, layers)
            except OSError as e:
                raise SdcError(f"cannot mount the files of container {c.name}: {e}") from e
    try:
        yield Root(fd, base, c.name)
    finally:
        os.close(fd)


def _overlay_then_detach(c: Container, layers: list[str]) -> int:
    """Kernels before 6.8 take no "lowerdir+" (and fsconfig strings of 256 bytes at
    most): mount the overlay on C's merged directory, hold its root, and detach it at
    once; the fd keeps the detached tree alive until it is closed."""
    merged = str(c.dir / "merged")
    sc.mount("overlay", merged, "overlay", 0, f"lowerdir={':'.join(reversed(layers))},"
             f"upperdir={c.dir / 'upper'},workdir={c.dir / 'work'}")
    try:
        return os.open(merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        sc.umount(merged, sc.MNT_DETACH)


def stat_path(root: Root, path: str) -> PathStat:
    """docker's stat of PATH: its last symlink not followed unless PATH ends in /."""
    parent, name = root.parent(path)
    try:
        if not name or follows(path):
            fd = root.open(path, os.O_PATH)
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
        else:
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise root.missing(path) from None
        link = root.resolve(path) if stat.S_ISLNK(st.st_mode) else ""
        return PathStat(os.path.basename(norm(path)) or "/", st.st_size, go_mode(st),
                        rfc3339(st.st_mtime), link)
    finally:
        os.close(parent)


# -- out --------------------------------------------------------------------------


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


def _add(tar: tarfile.TarFile, dir_fd: int, name: str, arcname: str, top: bool) -> None:
    """Add NAME (in DIR_FD, never followed) as ARCNAME, and below it if a directory."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return  # gone while we walked
    info = _info(arcname, st)
    if stat.S_ISREG(st.st_mode):
        fd = os.open(name, os.O_RDONLY | NOFOLLOW, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            tar.addfile(info, f)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        if top and arcname.rstrip("/").count("/") == 1 and arcname.split("/")[1] in SKIP_TOP:
            return
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=dir_fd)
        try:
            for entry in sorted(os.listdir(fd)):
                _add(tar, fd, entry, f"{arcname.rstrip('/')}/{entry}", top)
        finally:
            os.close(fd)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
        tar.addfile(info)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    # Sockets have no tar form: left out, as docker does.


def write_tar(root: Root, path: str, out: IO[bytes]) -> PathStat:
    """Tar PATH to OUT, named as docker names it (its base name; `.` for a trailing
    /.); its last symlink is followed only with a trailing /."""
    if norm(path).split("/")[1] in ("proc", "sys"):
        raise InvalidArgument(f"cannot copy {path}: the kernel's files are not the "
                              "container's")
    st = stat_path(root, path)
    arcname = "." if path.endswith("/.") or norm(path) == "/" else st.name
    if follows(path) or norm(path) == "/":
        parent, name = root.open(path, os.O_PATH | os.O_DIRECTORY), "."
    else:
        parent, name = root.parent(path)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, parent, name, arcname, norm(path) == "/")
    finally:
        os.close(parent)
    return st


# -- in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractOptions:
    """PUT /containers/{id}/archive's query."""

    no_overwrite_dir_non_dir: bool = False
    copy_uid_gid: bool = False
    owner: tuple[int, int] = (0, 0)  # the container's root, when not copying ids


def _member_name(name: str) -> str | None:
    """A member's clean relative name; None for the archive's own top (`.`)."""
    clean = os.path.normpath(name.lstrip("/"))
    if clean == ".":
        return None
    if clean == ".." or clean.startswith("../"):
        raise InvalidArgument(f"invalid archive member {name!r}: it leaves the destination")
    return clean


def _clear(parent: int, name: str, is_dir: bool, opts: ExtractOptions, where: str) -> None:
    """Make room for NAME in PARENT, as docker's extractor does."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    existing_dir = stat.S_ISDIR(st.st_mode)
    if existing_dir and is_dir:
        return
    if opts.no_overwrite_dir_non_dir and existing_dir != is_dir:
        raise InvalidArgument(f"cannot overwrite {'non-' if is_dir else ''}directory "
                              f"{where} with {'' if is_dir else 'non-'}directory")
    if existing_dir:
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def extract_tar(root: Root, path: str, src: IO[bytes], opts: ExtractOptions) -> None:
    """Extract the tar SRC into directory PATH of the container."""
    dest = root.open(path, os.O_PATH)
    try:
        if not stat.S_ISDIR(os.fstat(dest).st_mode):
            raise InvalidArgument(f"extraction point is not a directory: {path}")
    finally:
        os.close(dest)
    base = root.resolve(path + "/")
    try:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            dirs: list[tuple[str, tarfile.TarInfo]] = []
            for member in tar:
                rel = _member_name(member.name)
                if rel is None:
                    continue
                where = os.path.join(base, rel)
                _extract_one(root, tar, member, base, where, opts)
                if member.isdir():
                    dirs.append((where, member))
            for where, member in reversed(dirs):  # their times, once their files are in
                parent, name = root.parent(where)
                try:
                    os.utime(name, (member.mtime, member.mtime), dir_fd=parent,
                             follow_symlinks=False)
                finally:
                    os.close(parent)
    except tarfile.TarError as e:
        raise InvalidArgument(f"malformed archive: {e}") from e
    except OSError as e:
        if e.errno == errno.EROFS:
            raise PermissionDenied(f"container {root.container}: {path} is on a read-only "
                                   "file system") from e
        raise SdcError(f"extracting into {path} in container {root.container}: "
                       f"{e.strerror}") from e


def _extract_one(root: Root, tar: tarfile.TarFile, m: tarfile.TarInfo, base: str,
                 where: str, opts: ExtractOptions) -> None:
    head, name = os.path.split(where)
    # Missing parents are made (0755) through fds opened in the root.
    parent = mounts.open_in_root(root.path, root.fd, root.inner(head))
    try:
        _clear(parent, name, m.isdir(), opts, where)
        uid, gid = (m.uid, m.gid) if opts.copy_uid_gid else opts.owner
        if m.issym():
            os.symlink(m.linkname, name, dir_fd=parent)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            return
        if m.islnk():
            target = _member_name(m.linkname)
            if target is None:
                raise InvalidArgument(f"invalid hard link {m.name!r}")
            src_parent, src_name = root.parent(os.path.join(base, target))
            try:
                os.link(src_name, name, src_dir_fd=src_parent, dst_dir_fd=parent,
                        follow_symlinks=False)
            finally:
                os.close(src_parent)
            return
        if m.isdir():
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=parent)
        elif m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600,
                         dir_fd=parent)
            data = tar.extractfile(m)
            if data is not None:
                with os.fdopen(os.dup(fd), "wb") as f:
                    shutil.copyfileobj(data, f, 1 << 20)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
            # Opened for fchown/fchmod: O_RDONLY|O_NONBLOCK never blocks on a FIFO, and
            # the scope's device policy keeps a device node's open from doing harm.
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW, dir_fd=parent)
        else:
            return
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears set-id bits
            if not m.isdir():
                os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)
    finally:
        os.close(parent)


# -- the engine's entry points -----------------------------------------------------


def _in_root(c: Container, layers: list[str], path: str, fn: Callable[[Root], T]) -> T:
    with open_root(c, layers, path) as root:
        return fn(root)


async def _run(engine: Engine, ref: str, path: str, fn: Callable[[Root], T]) -> T:
    """FN on the root that reaches PATH in container REF.  A stopped container is
    held (its lock) meanwhile: a start must not mount its overlay beside ours."""
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    c = engine.get(ref)
    if c.running:
        return await asyncio.to_thread(_in_root, c, [], path, fn)
    async with engine.lock(c):
        engine.still_here(c)
        layers: list[str] = []
        if not c.running:
            image = await asyncio.to_thread(engine.images.resolve, c.config.image_id)
            layers = [str(p) for p in image.layers]
        return await asyncio.to_thread(_in_root, c, layers, path, fn)


async def stat_in(engine: Engine, ref: str, path: str) -> PathStat:
    """HEAD /containers/{id}/archive: PATH's stat."""
    return await _run(engine, ref, path, lambda root: stat_path(root, path))


async def tar_from(engine: Engine, ref: str, path: str, out: IO[bytes]) -> PathStat:
    """GET /containers/{id}/archive: PATH as a tar written to OUT, and its stat."""
    return await _run(engine, ref, path, lambda root: write_tar(root, path, out))


async def tar_into(engine: Engine, ref: str, path: str, src: IO[bytes],
                   no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
    """PUT /containers/{id}/archive: extract the tar SRC into directory PATH."""
    c = engine.get(ref)
    base = c.config.userns_base
    opts = ExtractOptions(no_overwrite_dir_non_dir, copy_uid_gid, (base, base))
    await _run(engine, ref, path, lambda root: extract_tar(root, path, src, opts))
