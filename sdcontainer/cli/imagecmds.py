"""Image verbs: images, pull, push, import, load, save, tag, rmi, image ..., login,
logout."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import SdcError
from . import formatting
from .client import APIError, Client, Usage

Handler = Callable[[Client, argparse.Namespace], int]


def pull(client: Client, ref: str, quiet: bool = False, platform: str | None = None) -> None:
    """Pull REF, printing docker-like progress.  Credentials for REF's registry in
    docker's config.json go along as docker's CLI sends them (X-Registry-Auth); else the
    daemon uses those `sdcontainer login` stored."""
    from .dockerconfig import registry_auth_header

    name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
    if "@" in ref:
        name, tag = ref, ""
    query = {"fromImage": name or ref, "tag": tag or None, "platform": platform}
    if "@" not in ref and not tag:
        print("Using default tag: latest", file=sys.stderr if quiet else sys.stdout)
        query["tag"] = "latest"
    last = ""
    for msg in client.json_lines("POST", "/images/create", query,
                                 headers=registry_auth_header(ref)):
        if "error" in msg:
            raise APIError(500, msg["error"])
        if quiet:
            continue
        line = f"{msg['id']}: {msg['status']}" if msg.get("id") else msg.get("status", "")
        if line != last and not msg.get("progressDetail"):
            print(line)
            last = line


def progress_bar(current: int, total: int, width: int) -> str:
    """docker's JSONProgress.String(): `[====>   ] 1.2MB/3.4MB` (the bar only on a
    terminal wider than 110 columns)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{formatting.human_size(current, 4):>8}"
    done = min(int(current / total * 100) // 2, 50)
    bar = f"[{'=' * done}>{' ' * (50 - done)}] " if width > 110 else ""
    if current > total:
        return bar + f"{formatting.human_size(current, 4):>8}"
    return bar + f"{formatting.human_size(current, 4):>8}/{formatting.human_size(total, 4)}"


def display_messages(messages: Any, out: Any, terminal: bool) -> None:
    """Print a daemon's progress stream as docker's jsonmessage does: on a terminal one
    line per layer id, rewritten in place; otherwise one line per message, leaving out
    those that only move a progress bar.  An error message ends it (SdcError)."""
    width = os.get_terminal_size(out.fileno()).columns if terminal else 0
    ids: dict[str, int] = {}
    for msg in messages:
        if "error" in msg:
            raise SdcError(str(msg["error"]))
        if "aux" in msg:
            continue
        detail = msg.get("progressDetail") or {}
        bar = progress_bar(int(detail.get("current") or 0), int(detail.get("total") or 0),
                           width)
        ident = str(msg.get("id") or "")
        status = str(msg.get("status") or msg.get("stream") or "")
        if not terminal:
            if not bar:
                out.write(f"{ident}: {status}\n" if ident else f"{status}\n")
            continue
        if not ident:
            ids.clear()  # docker: lines of an earlier operation are not rewritten
            out.write(f"{status}\n")
            continue
        if ident not in ids:
            ids[ident] = len(ids)
            out.write("\n")
        up = len(ids) - ids[ident]
        # up UP lines to the layer's, clear it, write it, back down
        out.write(f"\x1b[{up}A\x1b[2K\r{ident}: {status} {bar}\r\x1b[{up}B")
    out.flush()


def normalized(ref: str) -> str:
    """REF as docker's CLI prints a reference: with its registry and library/ path."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if sep else f"docker.io/library/{ref}"


def cmd_push(client: Client, ns: argparse.Namespace) -> int:
    """docker push: the image's tag (latest if none), or with -a all its local tags."""
    from .dockerconfig import registry_auth_header

    ref: str = ns.image
    if "@" in ref:
        raise Usage(f"cannot push a digest reference: {ref}")
    last = ref.rsplit("/", 1)[-1]
    name, tag = (ref.rsplit(":", 1) if ":" in last else (ref, ""))
    if not name or (":" in last and not tag):
        raise Usage(f"invalid reference format: {ref!r}")
    if ns.all_tags and tag:
        raise Usage("tag can't be used with --all-tags/-a")
    if not ns.all_tags and not tag:
        tag = "latest"
        if not ns.quiet:
            print("Using default tag: latest", flush=True)
    messages = client.json_lines("POST", f"/images/{name}/push", {"tag": tag or None},
                                 headers=registry_auth_header(name))
    if ns.quiet:
        for msg in messages:
            if "error" in msg:
                raise SdcError(str(msg["error"]))
        print(normalized(f"{name}:{tag}" if tag else name))
        return 0
    display_messages(messages, sys.stdout, sys.stdout.isatty())
    return 0


IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE"}


def image_refs(img: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows of one image, as docker's CLI lists them: one per
    tag, and one with tag <none> per repository known by digest alone (a pull by digest)."""
    digests: dict[str, str] = {}
    for d in img.get("RepoDigests") or []:
        repo, _, digest = d.partition("@")
        digests.setdefault(repo, digest)
    refs = []
    for tag in img.get("RepoTags") or []:
        repo, _, t = tag.rpartition(":")
        refs.append((repo, t, digests.get(repo, "<none>")))
    tagged = {r for r, _, _ in refs}
    refs += [(repo, "<none>", digest) for repo, digest in digests.items() if repo not in tagged]
    return refs or [("<none>", "<none>", "<none>")]


def image_rows(images: list[dict[str, Any]], ns: argparse.Namespace) -> list[dict[str, Any]]:
    """The fields of `images --format`, one row per tag, as docker names them."""
    import datetime

    rows = []
    for img in images:
        for repo, t, digest in image_refs(img):
            full = img["Id"]
            created = datetime.datetime.fromtimestamp(img.get("Created", 0)).astimezone()
            rows.append({
                "ID": full if ns.no_trunc else full.split(":", 1)[-1][:12],
                "Repository": repo, "Tag": t, "Digest": digest,
                "CreatedSince": formatting.ago(img.get("Created", 0)),
                "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S %z %Z"),
                "Size": formatting.human_size(img.get("Size", 0)),
                "VirtualSize": formatting.human_size(img.get("VirtualSize", img.get("Size", 0))),
                "SharedSize": "N/A", "UniqueSize": "N/A", "Containers": "N/A"})
    return rows


def cmd_images(client: Client, ns: argparse.Namespace) -> int:
    filters = list(ns.filter)
    if ns.reference:
        filters.append(f"reference={ns.reference}")
    images = client.call("GET", "/images/json", {"all": ns.all or None,
                                                 "filters": formatting.filters_arg(filters)})
    rows = image_rows(images, ns)
    if ns.quiet:  # a line per row, as docker: an image with two tags is listed twice
        formatting.emit("".join(r["ID"] + "\n" for r in rows))
        return 0
    default = ("table {{.Repository}}\\t{{.Tag}}\\t" + ("{{.Digest}}\\t" if ns.digests else "")
               + "{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}")
    formatting.emit(formatting.listing(ns.format, rows, IMAGE_HEADERS, default))
    return 0


def cmd_pull(client: Client, ns: argparse.Namespace) -> int:
    pull(client, ns.image, ns.quiet, ns.platform)
    if ns.quiet:
        print(ns.image)
    return 0


def cmd_import(client: Client, ns: argparse.Namespace) -> int:
    repo, tag = (ns.reference.rsplit(":", 1) if ns.reference and ":" in
                 ns.reference.split("/")[-1] else (ns.reference, None))
    source = sys.stdin.buffer if ns.file == "-" else open_file(ns.file)
    with source:
        for msg in client.json_lines("POST", "/images/create", {
                "fromSrc": "-", "repo": repo, "tag": tag, "changes": ns.change or None},
                raw=source):
            if "error" in msg:
                raise APIError(500, msg["error"])
            print(msg.get("status", ""))
    return 0


def open_file(path: str) -> Any:
    """PATH opened for reading, or a one-line error."""
    try:
        return open(path, "rb")
    except OSError as e:
        raise Usage(f"open {path}: {e.strerror}") from None


def cmd_load(client: Client, ns: argparse.Namespace) -> int:
    source = sys.stdin.buffer if not ns.input or ns.input == "-" else open_file(ns.input)
    with source:
        for msg in client.json_lines("POST", "/images/load", {"quiet": ns.quiet or None},
                                     raw=source):
            if "error" in msg:
                raise APIError(500, msg["error"])
            sys.stdout.write(msg.get("stream", ""))
    return 0


def download(client: Client, path: str, query: dict[str, Any] | None, output: str | None) -> int:
    """GET PATH (a tar: save, export) into OUTPUT, or stdout when it is not a terminal.
    OUTPUT appears whole or not at all."""
    if not output and os.isatty(1):
        raise Usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = client.stream("GET", path, query)
    out = open(output + ".tmp", "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        while chunk := resp.read(1 << 20):
            out.write(chunk)
    finally:
        if output:
            out.close()
    if output:
        os.rename(output + ".tmp", output)
    return 0


def cmd_save(client: Client, ns: argparse.Namespace) -> int:
    return download(client, "/images/get", {"names": ns.images}, ns.output)


def cmd_tag(client: Client, ns: argparse.Namespace) -> int:
    repo, tag = (ns.target.rsplit(":", 1) if ":" in ns.target.split("/")[-1]
                 else (ns.target, "latest"))
    client.call("POST", f"/images/{ns.source}/tag", {"repo": repo, "tag": tag})
    return 0


def cmd_rmi(client: Client, ns: argparse.Namespace) -> int:
    rc = 0
    for name in ns.images:
        try:
            for entry in client.call("DELETE", f"/images/{name}", {"force": ns.force or None}):
                for k, v in entry.items():
                    print(f"{k}: {v}")
        except SdcError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            rc = 1
    return rc


def cmd_image_prune(client: Client, ns: argparse.Namespace) -> int:
    filters = json.dumps({"dangling": ["false" if ns.all else "true"]})
    answer = client.call("POST", "/images/prune", {"filters": filters})
    deleted = answer.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for d in deleted:
            for kind, what in d.items():
                print(f"{kind.lower()}: {what}")
        print()
    print(f"Total reclaimed space: "
          f"{formatting.human_size(answer.get('SpaceReclaimed') or 0, 4)}")
    return 0


def cmd_login(client: Client, ns: argparse.Namespace) -> int:
    password, username = login_credentials(ns)
    answer = client.call("POST", "/auth", body={
        "username": username, "password": password, "serveraddress": ns.server})
    print(answer.get("Status", "Login Succeeded"))
    return 0


def login_credentials(ns: argparse.Namespace) -> tuple[str, str]:
    """(password, username) as docker's login gets them: from the flags, stdin
    (--password-stdin, which needs -u), or asked for on the terminal, the username
    first."""
    if ns.password is not None and ns.password_stdin:
        raise Usage("conflicting options: cannot specify both --password and "
                    "--password-stdin")
    if ns.password_stdin:
        if not ns.username:
            raise Usage("the --password-stdin option requires --username to be set")
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
        return password, ns.username
    if ns.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)
    if (not ns.username or ns.password is None) and not sys.stdin.isatty():
        raise Usage("Error: Cannot perform an interactive login from a non TTY device")
    username = ns.username
    if not username:
        sys.stdout.write("Username: ")
        sys.stdout.flush()
        username = sys.stdin.readline().strip()
        if not username:
            raise Usage("Error: Non-null Username Required")
    if ns.password is not None:
        return ns.password, username
    import getpass

    password = getpass.getpass("Password: ")
    if not password:
        raise Usage("Error: Password Required")
    return password, username


def cmd_logout(client: Client, ns: argparse.Namespace) -> int:
    try:
        client.call("DELETE", f"/auth/{ns.server}")
        print(f"Removing login credentials for {ns.server}")
    except APIError as e:
        if e.status != 404:
            raise
        print(f"Not logged in to {ns.server}")
    return 0


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser],
              cmd_inspect: Handler) -> None:
    """The image verbs, at the top level and under `image`, and login/logout."""
    def image_verbs(parent: Any, prefix: str) -> None:
        v = verb("ls" if prefix else "images", cmd_images, "List images", parent=parent,
                 aliases=["list"] if prefix else [])
        v.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
        v.add_argument("-a", "--all", action="store_true",
                       help="show all images (default hides intermediate images)")
        v.add_argument("--digests", action="store_true", help="show digests")
        v.add_argument("--no-trunc", action="store_true", help="don't truncate output")
        v.add_argument("-f", "--filter", action="append", default=[],
                       help="filter output based on conditions provided (key=value)")
        v.add_argument("--format", help="format output: table, json or a Go template")
        v.add_argument("reference", nargs="?")
        v = verb("pull", cmd_pull, "Download an image from a registry", parent=parent)
        v.add_argument("-q", "--quiet", action="store_true",
                       help="suppress verbose output: print the reference only")
        v.add_argument("--platform",
                       help="pull this platform of a multi-platform image (os/arch[/variant])")
        v.add_argument("image")
        v = verb("push", cmd_push, "Upload an image to a registry", parent=parent)
        v.add_argument("-a", "--all-tags", action="store_true",
                       help="push all tags of the image's repository")
        v.add_argument("-q", "--quiet", action="store_true",
                       help="suppress verbose output: print the pushed reference only")
        v.add_argument("image", metavar="NAME[:TAG]")
        v = verb("import", cmd_import, "Import a rootfs tarball to create an image",
                 parent=parent)
        v.add_argument("-c", "--change", action="append", default=[],
                       help="apply a Dockerfile instruction to the image (CMD, ENV, ...)")
        v.add_argument("file")
        v.add_argument("reference", nargs="?")
        v = verb("load", cmd_load, "Load an image from a tar archive", parent=parent)
        v.add_argument("-i", "--input", help="read from a tar archive file instead of STDIN")
        v.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
        v = verb("save", cmd_save, "Save images to a tar archive", parent=parent)
        v.add_argument("-o", "--output", help="write to a file instead of STDOUT")
        v.add_argument("images", nargs="+")
        v = verb("tag", cmd_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
                 parent=parent)
        v.add_argument("source")
        v.add_argument("target")
        v = verb("rm" if prefix else "rmi", cmd_rmi, "Remove one or more images", parent=parent)
        v.add_argument("-f", "--force", action="store_true",
                       help="remove the image even if containers use it")
        v.add_argument("images", nargs="+")

    image_verbs(sub, "")
    image = sub.add_parser("image", help="Manage images")
    isub = image.add_subparsers(dest="image_verb", metavar="COMMAND", required=True)
    image_verbs(isub, "image")
    v = verb("inspect", cmd_inspect, "Display detailed information on images", parent=isub)
    v.add_argument("-f", "--format", help="format output using a Go template")
    v.add_argument("names", nargs="+")
    v.set_defaults(type="image")
    v = verb("prune", cmd_image_prune, "Remove unused images", parent=isub)
    v.add_argument("-a", "--all", action="store_true",
                   help="remove all images no container uses, not just dangling ones")
    v.add_argument("-f", "--force", action="store_true",
                   help="do not prompt for confirmation")
    v = verb("login", cmd_login, "Log in to a registry")
    v.add_argument("-u", "--username", help="username")
    v.add_argument("-p", "--password", help="password (prefer --password-stdin)")
    v.add_argument("--password-stdin", action="store_true",
                   help="take the password from STDIN")
    v.add_argument("server", nargs="?", default="docker.io")
    v = verb("logout", cmd_logout, "Log out from a registry")
    v.add_argument("server", nargs="?", default="docker.io")
