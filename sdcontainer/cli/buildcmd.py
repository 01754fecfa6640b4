"""`build`, `commit`, `diff` and `export`: docker's verbs over /build, /commit and a
container's /changes and /export."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

from .client import Client, Usage

_KINDS = {0: "C", 1: "A", 2: "D"}


def _split_ref(ref: str | None) -> tuple[str | None, str | None]:
    if not ref:
        return None, None
    if ":" in ref.split("/")[-1]:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, None


def context_tar(path: str, dockerfile: str | None) -> tuple[BinaryIO, str]:
    """The directory PATH as a tar in a temporary file, and the Dockerfile's name in it.

    Everything is sent; the daemon applies .dockerignore (one matcher, docker's rules).
    Entries are sorted so the same directory gives the same context."""
    if not os.path.isdir(path):
        raise Usage(f"unable to prepare context: path {path!r} not found")
    out: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    name = "Dockerfile"
    extra: str | None = None
    if dockerfile:
        full = os.path.abspath(dockerfile if os.path.isabs(dockerfile)
                               else os.path.join(os.getcwd(), dockerfile))
        if not os.path.exists(full):
            full = os.path.abspath(os.path.join(path, dockerfile))
        rel = os.path.relpath(full, os.path.abspath(path))
        if rel.startswith(".."):
            extra, name = full, ".dockerfile.sdcontainer"
        else:
            name = rel
        if not os.path.isfile(full):
            raise Usage(f"unable to prepare context: the Dockerfile {dockerfile} does not exist")
    elif not os.path.isfile(os.path.join(path, "Dockerfile")):
        raise Usage(f"unable to prepare context: no Dockerfile in {path}")
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for top, dirs, files in os.walk(path):
            dirs.sort()
            for entry in sorted(dirs + files):
                full = os.path.join(top, entry)
                tf.add(full, arcname=os.path.relpath(full, path), recursive=False)
        if extra:
            tf.add(extra, arcname=name, recursive=False)
    out.seek(0)
    return out, name


def _stdin_context() -> tuple[BinaryIO, str]:
    """`build -`: a tar context, or a lone Dockerfile, on stdin."""
    data = sys.stdin.buffer.read()
    if _is_tar(data):
        return io.BytesIO(data), "Dockerfile"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        info.mode = 0o644
        tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf, "Dockerfile"


def _is_tar(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    return len(data) >= 512 and data[257:262] == b"ustar"


def _kv(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, eq, value = v.partition("=")
        if not key:
            raise Usage(f"invalid {what} {v!r}: want KEY=VALUE")
        out[key] = value if eq else os.environ.get(key, "")
    return out


def cmd_build(client: Client, ns: argparse.Namespace) -> int:
    if ns.path == "-":
        source, name = _stdin_context()
    else:
        source, name = context_tar(ns.path, ns.file)
    query: dict[str, Any] = {
        "t": ns.tag or None, "dockerfile": name, "target": ns.target or None,
        "nocache": ns.no_cache or None, "q": ns.quiet or None,
        "buildargs": json.dumps(_kv(ns.build_arg, "--build-arg")) if ns.build_arg else None,
        "labels": json.dumps(_kv(ns.label, "--label")) if ns.label else None,
        "networkmode": ns.network, "platform": ns.platform,
        "extrahosts": ns.add_host or None, "rm": "0" if not ns.rm else None,
        "forcerm": ns.force_rm or None,
        "cachefrom": json.dumps(ns.cache_from) if ns.cache_from else None,
        "shmsize": ns.shm_size,
    }
    image_id = ""
    with source:
        for msg in client.json_lines("POST", "/build", query, raw=source):
            if "error" in msg:
                sys.stdout.flush()
                print(msg["error"], file=sys.stderr)
                return 1
            if "aux" in msg and isinstance(msg["aux"], dict):
                image_id = str(msg["aux"].get("ID", image_id))
            text = msg.get("stream")
            if text and not ns.quiet:
                sys.stdout.write(text)
                sys.stdout.flush()
    if ns.quiet:
        print(image_id)
    return 0


def cmd_commit(client: Client, ns: argparse.Namespace) -> int:
    repo, tag = _split_ref(ns.reference)
    answer = client.call("POST", "/commit", {
        "container": ns.container, "repo": repo, "tag": tag, "comment": ns.message,
        "author": ns.author, "pause": "1" if ns.pause else "0", "changes": ns.change or None})
    print(answer["Id"])
    return 0


def cmd_diff(client: Client, ns: argparse.Namespace) -> int:
    for c in client.call("GET", f"/containers/{ns.container}/changes") or []:
        print(f"{_KINDS.get(c['Kind'], '?')} {c['Path']}")
    return 0


def cmd_export(client: Client, ns: argparse.Namespace) -> int:
    from .imagecmds import download

    return download(client, f"/containers/{ns.container}/export", None, ns.output)


def cmd_builder_prune(client: Client, ns: argparse.Namespace) -> int:
    if not ns.force:
        what = "all build cache" if ns.all else "all dangling build cache"
        print(f"WARNING! This will remove {what}.\nAre you sure you want to continue? "
              "[y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from .formatting import human_size

    answer = client.call("POST", "/build/prune", {"all": "1" if ns.all else None})
    gone = answer.get("CachesDeleted") or []
    if gone:
        print("Deleted build cache objects:\n" + "\n".join(gone))
    print(f"Total reclaimed space: {human_size(answer.get('SpaceReclaimed') or 0, 4)}")
    return 0


def _bool(value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r}")


def _size(value: str) -> int:
    from ..errors import InvalidArgument
    from .options import parse_bytes

    try:
        return parse_bytes(value)
    except InvalidArgument as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """`build`, `builder prune`, `commit`, `diff` and `export` into the parser."""
    for group in ("builder", "buildx"):
        g = sub.add_parser(group, help="Manage builds")
        gsub = g.add_subparsers(dest="builder_verb", metavar="COMMAND", required=True)
        v = verb("prune", cmd_builder_prune, "Remove build cache", parent=gsub)
        v.add_argument("-a", "--all", action="store_true",
                       help="all build cache, not only what no tagged image is built on")
        v.add_argument("-f", "--force", action="store_true",
                       help="do not prompt for confirmation")
    v = verb("build", cmd_build, "Build an image from a Dockerfile")
    v.add_argument("-t", "--tag", action="append", default=[],
                   help="name and optionally a tag in the name:tag format")
    v.add_argument("-f", "--file", help="name of the Dockerfile (default: PATH/Dockerfile)")
    v.add_argument("--build-arg", action="append", default=[],
                   help="set a build-time variable (ARG) as KEY=VALUE")
    v.add_argument("--label", action="append", default=[],
                   help="set metadata for the image (KEY=VALUE)")
    v.add_argument("--target", help="set the target build stage to build")
    v.add_argument("--no-cache", action="store_true",
                   help="do not use the cache when building the image")
    v.add_argument("-q", "--quiet", action="store_true",
                   help="suppress the build output and print the image ID on success")
    v.add_argument("--network", help="networking mode of the RUN instructions")
    v.add_argument("--platform", help="set the platform of the image (os/arch)")
    v.add_argument("--add-host", action="append", default=[],
                   help="add a custom host-to-IP mapping (host:ip) to the RUN steps")
    v.add_argument("--rm", type=_bool, default=True,
                   help="remove intermediate containers after a successful build")
    v.add_argument("--force-rm", action="store_true",
                   help="always remove intermediate containers")
    v.add_argument("--cache-from", action="append", default=[],
                   help="images to consider as cache sources")
    v.add_argument("--shm-size", type=_size, help="size of /dev/shm of the RUN steps")
    v.add_argument("path")
    v = verb("commit", cmd_commit, "Create a new image from a container's changes")
    v.add_argument("-a", "--author", help='author (e.g. "Jane Doe <jane@example.org>")')
    v.add_argument("-m", "--message", help="commit message")
    v.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction to the created image")
    v.add_argument("-p", "--pause", type=_bool, default=True,
                   help="pause the container during commit")
    v.add_argument("container")
    v.add_argument("reference", nargs="?")
    v = verb("diff", cmd_diff, "Inspect changes to files or directories on a container's "
             "filesystem")
    v.add_argument("container")
    v = verb("export", cmd_export, "Export a container's filesystem as a tar archive")
    v.add_argument("-o", "--output", help="write to a file instead of STDOUT")
    v.add_argument("container")

