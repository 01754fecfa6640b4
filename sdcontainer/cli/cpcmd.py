"""`cp`: files between a container and the local filesystem, as `docker cp` copies.

CONTAINER:PATH on either side; `-` is a tar on stdin (into a container) or stdout
(out of one).  The daemon resolves container paths inside the container's root;
here, what arrives is extracted refusing any member that would land outside the
destination (an absolute name, `..`, or a path through a symlink it made).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, SdcError
from .client import Client

if TYPE_CHECKING:
    import tarfile

STAT = "x-docker-container-path-stat"
GO_DIR, GO_SYMLINK = 1 << 31, 1 << 27


def split(arg: str) -> tuple[str | None, str]:
    """(container, path) of CONTAINER:PATH, or (None, ARG) for a local path."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return container, path


def stat(client: Client, container: str, path: str) -> dict[str, Any] | None:
    """PATH's stat in CONTAINER, or None if it does not exist."""
    import base64

    from .client import APIError

    try:
        resp = client.stream("HEAD", f"/containers/{container}/archive", {"path": path})
    except APIError as e:
        if e.status == 404:
            return None
        raise
    resp.close()
    header = resp.headers.get(STAT)
    return json.loads(base64.b64decode(header)) if header else None


def cmd_cp(client: Client, ns: argparse.Namespace) -> int:
    src_ctr, src = split(ns.src)
    dst_ctr, dst = split(ns.dst)
    if (src_ctr is None) == (dst_ctr is None):
        raise InvalidArgument("copying between containers or between local paths is not "
                              "supported: one of SRC and DST must be CONTAINER:PATH")
    if src_ctr is not None:
        return copy_out(client, src_ctr, src, dst, ns.follow_link, ns.archive)
    assert dst_ctr is not None
    return copy_in(client, src, dst_ctr, dst, ns.follow_link, ns.archive)


# -- out of a container ---------------------------------------------------------------


def copy_out(client: Client, container: str, path: str, dst: str, follow: bool,
             keep_ids: bool) -> int:
    """CONTAINER:PATH to DST (a local path, or - for a tar on stdout)."""
    import io
    import tarfile
    st = stat(client, container, path)
    if st is None:
        raise SdcError(f"Error response from daemon: Could not find the file {path} in "
                       f"container {container}")
    if follow and st["mode"] & GO_SYMLINK and st.get("linkTarget"):
        path = st["linkTarget"]
    resp = client.stream("GET", f"/containers/{container}/archive", {"path": path})
    try:
        if dst == "-":
            while chunk := resp.read1(1 << 20):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return 0
        data = resp.read()
    finally:
        resp.close()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = tar.getmembers()
        top = members[0].name.split("/")[0] if members else ""
        if path.endswith("/."):
            os.makedirs(dst, exist_ok=True)
            target, rename = dst, None
        elif os.path.isdir(dst):
            target, rename = dst, None
        else:
            parent = os.path.dirname(os.path.abspath(dst))
            if not os.path.isdir(parent):
                raise SdcError(f"no such directory: {parent}")
            target, rename = parent, os.path.basename(dst)
        chosen = list(safe_members(members, top, rename, keep_ids))
        tar.extractall(target, members=chosen, numeric_owner=True)
    return 0


def safe_members(members: list[tarfile.TarInfo], top: str, rename: str | None,
                 keep_ids: bool) -> Iterator[tarfile.TarInfo]:
    """MEMBERS with the top entry renamed to RENAME, owned by us unless KEEP_IDS;
    refused if one would leave the destination."""
    links: set[str] = set()
    for m in members:
        name = m.name
        if rename is not None and top:
            name = rename + name[len(top):] if name == top or name.startswith(top + "/") \
                else name
        clean = os.path.normpath(name)
        if clean.startswith(("/", "../")) or clean == ".." or \
                any(clean == link or clean.startswith(link + "/") for link in links):
            raise SdcError(f"refusing archive member {m.name!r}: it leaves the destination")
        if m.issym() or m.islnk():
            links.add(clean)
            if m.islnk() and (os.path.isabs(m.linkname) or
                              os.path.normpath(m.linkname).startswith("..")):
                raise SdcError(f"refusing hard link {m.name!r} to {m.linkname!r}")
        m.name = clean
        if not keep_ids:
            m.uid, m.gid = os.getuid(), os.getgid()
        yield m


# -- into a container -------------------------------------------------------------------


def copy_in(client: Client, src: str, container: str, path: str, follow: bool,
            keep_ids: bool) -> int:
    """SRC (a local path, or - for a tar on stdin) to CONTAINER:PATH."""
    import io
    import tarfile
    query: dict[str, Any] = {"path": path, "noOverwriteDirNonDir": True,
                             "copyUIDGID": keep_ids or None}
    if src == "-":
        client.call("PUT", f"/containers/{container}/archive", query, raw=sys.stdin.buffer)
        return 0
    if follow:
        src = os.path.realpath(src)
    if not os.path.lexists(src):
        raise SdcError(f"no such file or directory: {src}")
    st = stat(client, container, path)
    contents = src.endswith("/.")
    if st is not None and st["mode"] & GO_DIR:
        dest_dir, name = path, os.path.basename(os.path.normpath(src))
    elif st is not None and os.path.isdir(src):
        raise SdcError(f"cannot copy a directory to a file: {path}")
    else:
        if path.endswith("/") and st is None:
            raise SdcError(f"no such directory: {path}")
        dest_dir, name = os.path.dirname(path.rstrip("/")) or "/", os.path.basename(
            path.rstrip("/"))
        contents = False
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if contents:
            for entry in sorted(os.listdir(src)):
                tar.add(os.path.join(src, entry), arcname=entry)
        else:
            tar.add(src, arcname=name)
    buf.seek(0)
    query["path"] = dest_dir
    client.call("PUT", f"/containers/{container}/archive", query, raw=buf.getvalue())
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`cp` into the parser."""
    v = verb("cp", cmd_cp, "Copy files/folders between a container and the local filesystem")
    v.add_argument("-a", "--archive", action="store_true", help="keep uid/gid")
    v.add_argument("-L", "--follow-link", action="store_true",
                   help="always follow symbolic links in SRC_PATH")
    v.add_argument("src", metavar="SRC")
    v.add_argument("dst", metavar="DST")
