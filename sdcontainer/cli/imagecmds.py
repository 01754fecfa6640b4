"""Image verbs: images, pull, import, load, save, tag, rmi, image ..., login, logout."""

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
    """Pull REF, printing docker-like progress."""
    name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
    if "@" in ref:
        name, tag = ref, ""
    query = {"fromImage": name or ref, "tag": tag or None, "platform": platform}
    if "@" not in ref and not tag:
        print("Using default tag: latest", file=sys.stderr if quiet else sys.stdout)
        query["tag"] = "latest"
    last = ""
    for msg in client.json_lines("POST", "/images/create", query):
        if "error" in msg:
            raise APIError(500, msg["error"])
        if quiet:
            continue
        line = f"{msg['id']}: {msg['status']}" if msg.get("id") else msg.get("status", "")
        if line != last and not msg.get("progressDetail"):
            print(line)
            last = line


def cmd_images(client: Client, ns: argparse.Namespace) -> int:
    images = client.call("GET", "/images/json")
    rows = []
    for img in images:
        for tag in img["RepoTags"] or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            digest = next((d.split("@", 1)[1] for d in img.get("RepoDigests") or []
                           if d.startswith(repo + "@")), "<none>")
            rows.append([repo, t, digest, img["Id"].split(":", 1)[1][:12],
                         formatting.ago(img["Created"]), formatting.human_size(img["Size"])])
    if ns.quiet:
        seen = []
        for r in rows:
            if r[3] not in seen:
                seen.append(r[3])
        print("\n".join(seen)) if seen else None
        return 0
    headers = ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    if not ns.digests:
        headers.pop(2)
        rows = [r[:2] + r[3:] for r in rows]
    print(formatting.table(headers, rows))
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


def cmd_save(client: Client, ns: argparse.Namespace) -> int:
    if not ns.output and os.isatty(1):
        raise Usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = client.stream("GET", "/images/get", {"names": ns.images})
    out = open(ns.output + ".tmp", "wb") if ns.output else sys.stdout.buffer  # noqa: SIM115
    try:
        while chunk := resp.read(1 << 20):
            out.write(chunk)
    finally:
        if ns.output:
            out.close()
    if ns.output:
        os.rename(ns.output + ".tmp", ns.output)
    return 0


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
            print(f"deleted: {d['Deleted']}")
    print("\nTotal reclaimed space: 0B")
    return 0


def cmd_login(client: Client, ns: argparse.Namespace) -> int:
    if ns.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif ns.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)
        password = ns.password
    else:
        import getpass

        password = getpass.getpass("Password: ")
    username = ns.username or input("Username: ")
    answer = client.call("POST", "/auth", body={
        "username": username, "password": password, "serveraddress": ns.server})
    print(answer.get("Status", "Login Succeeded"))
    return 0


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
        v.add_argument("-q", "--quiet", action="store_true")
        v.add_argument("-a", "--all", action="store_true")
        v.add_argument("--digests", action="store_true")
        v = verb("pull", cmd_pull, "Download an image from a registry", parent=parent)
        v.add_argument("-q", "--quiet", action="store_true")
        v.add_argument("--platform")
        v.add_argument("image")
        v = verb("import", cmd_import, "Import a rootfs tarball to create an image",
                 parent=parent)
        v.add_argument("-c", "--change", action="append", default=[])
        v.add_argument("file")
        v.add_argument("reference", nargs="?")
        v = verb("load", cmd_load, "Load an image from a tar archive", parent=parent)
        v.add_argument("-i", "--input")
        v.add_argument("-q", "--quiet", action="store_true")
        v = verb("save", cmd_save, "Save images to a tar archive", parent=parent)
        v.add_argument("-o", "--output")
        v.add_argument("images", nargs="+")
        v = verb("tag", cmd_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
                 parent=parent)
        v.add_argument("source")
        v.add_argument("target")
        v = verb("rm" if prefix else "rmi", cmd_rmi, "Remove one or more images", parent=parent)
        v.add_argument("-f", "--force", action="store_true")
        v.add_argument("images", nargs="+")

    image_verbs(sub, "")
    image = sub.add_parser("image", help="Manage images")
    isub = image.add_subparsers(dest="image_verb", metavar="COMMAND", required=True)
    image_verbs(isub, "image")
    v = verb("inspect", cmd_inspect, "Display detailed information on images", parent=isub)
    v.add_argument("-f", "--format")
    v.add_argument("names", nargs="+")
    v.set_defaults(type="image")
    v = verb("prune", cmd_image_prune, "Remove unused images", parent=isub)
    v.add_argument("-a", "--all", action="store_true")
    v.add_argument("-f", "--force", action="store_true")
    v = verb("login", cmd_login, "Log in to a registry")
    v.add_argument("-u", "--username")
    v.add_argument("-p", "--password")
    v.add_argument("--password-stdin", action="store_true")
    v.add_argument("server", nargs="?", default="docker.io")
    v = verb("logout", cmd_logout, "Log out from a registry")
    v.add_argument("server", nargs="?", default="docker.io")
