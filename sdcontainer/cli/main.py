"""sdcontainer: the docker-compatible command line, a thin client of sdcontainerd.

Verbs, flags, output and exit codes follow docker's: `run` exits with the
container's status, 125 when the daemon refused, 126/127 when the command
could not be run; other verbs exit 1 on error.  Errors are one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .. import __version__
from ..errors import InvalidArgument, SdcError
from . import attach, formatting, netcmds, systemdcmds, tlscmds
from .client import APIError, Client, read_frames
from .options import add_container_flags, create_body

Handler = Callable[[Client, argparse.Namespace], int]


class StartError(SdcError):
    """The container was created but could not start: docker's 126/127 apply."""

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class Usage(SdcError):
    """A command-line mistake: exit 125 for run/create, else 1, like docker."""


def exec_exit_code(message: str) -> int:
    """docker's mapping of a start failure to 126/127."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "exec format error" in lowered:
        return 126
    return 125


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


def create(client: Client, ns: argparse.Namespace) -> str:
    """Create the container NS describes, pulling its image if it is missing."""
    body = create_body(ns)
    try:
        answer = client.call("POST", "/containers/create", {"name": ns.name}, body)
    except APIError as e:
        if e.status != 404 or "image" not in str(e).lower():
            raise
        print(f"Unable to find image '{ns.image}' locally", file=sys.stderr)
        pull(client, ns.image, quiet=False, platform=ns.platform)
        answer = client.call("POST", "/containers/create", {"name": ns.name}, body)
    cid: str = answer["Id"]
    return cid


def cmd_create(client: Client, ns: argparse.Namespace) -> int:
    print(create(client, ns))
    return 0


def cmd_run(client: Client, ns: argparse.Namespace) -> int:
    cid = create(client, ns)
    if ns.sdnotify and not ns.detach:  # the main process of a (generated) service
        return systemdcmds.run_notified(client, cid, ns)
    if ns.detach:
        try:
            client.call("POST", f"/containers/{cid}/start")
        except APIError as e:
            with contextlib.suppress(APIError):
                client.call("DELETE", f"/containers/{cid}", {"force": True})
            raise StartError(str(e)) from None
        print(cid)
        return 0
    return attached_start(client, cid, tty=ns.tty, stdin=ns.interactive,
                          condition="removed" if ns.rm else "next-exit")


def attached_start(client: Client, cid: str, *, tty: bool, stdin: bool, condition: str) -> int:
    """Attach, start, stream until the end, and return the exit status."""
    sock = client.hijack(f"/containers/{cid}/attach",
                         {"stream": True, "stdin": stdin, "stdout": True, "stderr": True})
    w, result = client.wait_later(cid, condition)
    try:
        client.call("POST", f"/containers/{cid}/start")
    except APIError as e:
        sock.close()
        w.join(5)
        raise StartError(str(e)) from None
    with attach.proxy_signals(client, cid, not tty):
        attach.stream(sock, tty=tty, stdin=stdin, resize=lambda h, w_: client.call(
            "POST", f"/containers/{cid}/resize", {"h": h, "w": w_}))
        w.join()
    if "error" in result:
        raise result["error"]
    return int(result.get("StatusCode", 0))


def cmd_start(client: Client, ns: argparse.Namespace) -> int:
    if ns.attach or ns.interactive:
        if len(ns.containers) > 1:
            raise Usage("you cannot start and attach multiple containers at once")
        info = client.call("GET", f"/containers/{ns.containers[0]}/json")
        return attached_start(client, info["Id"], tty=info["Config"]["Tty"],
                              stdin=ns.interactive, condition="next-exit")
    return formatting.each(ns.containers, lambda c: client.call("POST", f"/containers/{c}/start"))


def cmd_stop(client: Client, ns: argparse.Namespace) -> int:
    def stop(c: str) -> None:
        try:
            client.call("POST", f"/containers/{c}/stop", {"t": ns.time})
        except APIError as e:
            if e.status != 304:  # already stopped: docker says nothing either
                raise
    return formatting.each(ns.containers, stop)


def cmd_restart(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.containers,
                lambda c: client.call("POST", f"/containers/{c}/restart", {"t": ns.time}))


def cmd_kill(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.containers,
                lambda c: client.call("POST", f"/containers/{c}/kill", {"signal": ns.signal}))


def cmd_rm(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.containers,
                lambda c: client.call("DELETE", f"/containers/{c}", {"force": ns.force or None}))


def cmd_wait(client: Client, ns: argparse.Namespace) -> int:
    def wait(c: str) -> None:
        print(client.call("POST", f"/containers/{c}/wait")["StatusCode"])
    return formatting.each(ns.containers, wait, echo=False)


def cmd_ps(client: Client, ns: argparse.Namespace) -> int:
    found = client.call("GET", "/containers/json", {"all": ns.all or None,
                                                   "limit": 1 if ns.latest else ns.last})
    if ns.quiet:
        for c in found:
            print(c["Id"] if ns.no_trunc else c["Id"][:12])
        return 0
    rows = [formatting.ps_row(c, ns.no_trunc) for c in found]
    if ns.format:
        for r in rows:
            print(formatting.render(ns.format if ns.format != "json" else "json", r))
        return 0
    print(formatting.table(
        ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
        [[r["ID"], r["Image"], r["Command"], r["RunningFor"], r["Status"], r["Ports"], r["Names"]]
         for r in rows]))
    return 0


def cmd_inspect(client: Client, ns: argparse.Namespace) -> int:
    results, rc = [], 0
    for name in ns.names:
        try:
            if ns.type in (None, "container"):
                try:
                    results.append(client.call("GET", f"/containers/{name}/json"))
                    continue
                except APIError as e:
                    if e.status != 404 or ns.type == "container":
                        raise
            results.append(client.call("GET", f"/images/{name}/json"))
        except APIError as e:
            print(f"Error: No such object: {name}" if e.status == 404 else f"Error: {e}",
                  file=sys.stderr)
            rc = 1
    formatting.print_inspected(results, ns.format)
    return rc


def cmd_logs(client: Client, ns: argparse.Namespace) -> int:
    info = client.call("GET", f"/containers/{ns.container}/json")
    resp = client.stream("GET", f"/containers/{ns.container}/logs", {
        "stdout": True, "stderr": True, "follow": ns.follow or None, "tail": ns.tail,
        "since": since_arg(ns.since), "until": since_arg(ns.until),
        "timestamps": ns.timestamps or None})
    for stream, data in read_frames(resp, info["Config"]["Tty"]):
        target = sys.stderr.buffer if stream == 2 else sys.stdout.buffer
        target.write(data)
        target.flush()
    return 0


def since_arg(value: str | None) -> str | None:
    """docker's --since: a unix time, an RFC 3339 date, or a duration like 10m."""
    if not value:
        return None
    import datetime
    import re
    import time

    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", value)
    if m:
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
        return f"{time.time() - seconds:.6f}"
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    try:
        return str(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise Usage(f"invalid time value {value!r}") from None


def cmd_exec(client: Client, ns: argparse.Namespace) -> int:
    if not ns.command:
        raise Usage('"exec" requires at least 2 arguments')
    env = [e if "=" in e else f"{e}={os.environ.get(e, '')}" for e in ns.env]
    answer = client.call("POST", f"/containers/{ns.container}/exec", body={
        "Cmd": ns.command, "Env": env, "WorkingDir": ns.workdir or "", "User": ns.user or "",
        "Tty": ns.tty, "AttachStdin": ns.interactive, "AttachStdout": not ns.detach,
        "AttachStderr": not ns.detach})
    eid = answer["Id"]
    if ns.detach:
        client.call("POST", f"/exec/{eid}/start", body={"Detach": True})
        return 0
    try:
        sock = client.hijack(f"/exec/{eid}/start", body={"Detach": False, "Tty": ns.tty})
    except APIError as e:
        print(f"Error response from daemon: {e}", file=sys.stderr)
        return exec_exit_code(str(e))
    attach.stream(sock, tty=ns.tty, stdin=ns.interactive, resize=lambda h, w: client.call(
        "POST", f"/exec/{eid}/resize", {"h": h, "w": w}))
    code = client.call("GET", f"/exec/{eid}/json").get("ExitCode")
    return int(code) if code is not None else 0


def cmd_top(client: Client, ns: argparse.Namespace) -> int:
    answer = client.call("GET", f"/containers/{ns.container}/top",
                         {"ps_args": " ".join(ns.ps_args) or None})
    print(formatting.table(answer["Titles"], answer["Processes"]))
    return 0


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


def cmd_version(client: Client, ns: argparse.Namespace) -> int:
    from ..buildinfo import commit

    print(f"Client:\n Version:    {__version__}\n API version: 1.41\n Git commit: {commit()}")
    try:
        v = client.call("GET", "/version")
        print(f"\nServer:\n Engine:\n  Version:    {v['Version']}\n  API version: "
              f"{v['ApiVersion']} (minimum version {v['MinAPIVersion']})\n  OS/Arch:    "
              f"{v['Os']}/{v['Arch']}\n  Kernel:     {v['KernelVersion']}")
    except SdcError as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


def cmd_info(client: Client, ns: argparse.Namespace) -> int:
    info = client.call("GET", "/info")
    if ns.format:
        print(formatting.render(ns.format, info))
        return 0
    for key in ("Containers", "ContainersRunning", "ContainersStopped", "ServerVersion",
                "CgroupDriver", "CgroupVersion", "KernelVersion", "OperatingSystem", "NCPU",
                "DockerRootDir"):
        print(f" {key}: {info.get(key)}")
    return 0


def cmd_events(client: Client, ns: argparse.Namespace) -> int:
    for e in client.json_lines("GET", "/events", {"filters": json.dumps(
            {"container": ns.filter_container} if ns.filter_container else {}) or None}):
        if ns.format:
            print(formatting.render(ns.format, e), flush=True)
        else:
            attrs = e["Actor"]["Attributes"]
            print(f"{e['Type']} {e['Action']} {e['id']} (name={attrs.get('name')})", flush=True)
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming it, as docker's are."""

    def error(self, message: str) -> NoReturn:
        raise Usage(f"{self.prog}: {message}. See '{self.prog} --help'.")


def build_parser() -> argparse.ArgumentParser:
    """Every verb and flag."""
    p = Parser(prog="sdcontainer", description=__doc__.split("\n")[0])
    p.add_argument("--version", "-v", action="version", version=f"sdcontainer {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")

    def verb(name: str, handler: Handler, helptext: str, *, aliases: list[str] | None = None,
             parent: Any = sub, conflict_h: bool = False) -> argparse.ArgumentParser:
        v: argparse.ArgumentParser = parent.add_parser(
            name, help=helptext, description=helptext, aliases=aliases or [],
            add_help=not conflict_h)
        if conflict_h:
            v.add_argument("--help", action="help", help="show this help message and exit")
        v.set_defaults(handler=handler)
        return v

    for name, handler, text in (("run", cmd_run, "Create and run a new container from an image"),
                                ("create", cmd_create, "Create a new container")):
        v = verb(name, handler, text, conflict_h=True)
        if name == "run":
            v.add_argument("-d", "--detach", action="store_true",
                           help="run container in background and print container ID")
        add_container_flags(v)

    v = verb("start", cmd_start, "Start one or more stopped containers")
    v.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    v.add_argument("-i", "--interactive", action="store_true", help="attach STDIN")
    v.add_argument("containers", nargs="+")
    for name, handler, text in (("stop", cmd_stop, "Stop one or more running containers"),
                                ("restart", cmd_restart, "Restart one or more containers")):
        v = verb(name, handler, text)
        v.add_argument("-t", "--time", "--timeout", type=int, help="seconds to wait before killing")
        v.add_argument("containers", nargs="+")
    v = verb("kill", cmd_kill, "Kill one or more running containers")
    v.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    v.add_argument("containers", nargs="+")
    v = verb("rm", cmd_rm, "Remove one or more containers")
    v.add_argument("-f", "--force", action="store_true",
                   help="force the removal of a running container")
    v.add_argument("-v", "--volumes", action="store_true", help="(accepted; no anonymous volumes)")
    v.add_argument("containers", nargs="+")
    v = verb("wait", cmd_wait, "Block until containers stop, then print their exit codes")
    v.add_argument("containers", nargs="+")
    v = verb("ps", cmd_ps, "List containers")
    v.add_argument("-a", "--all", action="store_true", help="show all containers")
    v.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    v.add_argument("-l", "--latest", action="store_true", help="show the latest created container")
    v.add_argument("-n", "--last", type=int, help="show n last created containers")
    v.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    v.add_argument("--format", help="format output: json or a Go template")
    v = verb("inspect", cmd_inspect, "Return low-level information on objects")
    v.add_argument("-f", "--format", help="format output using a Go template")
    v.add_argument("--type", choices=["container", "image"])
    v.add_argument("names", nargs="+")
    v = verb("logs", cmd_logs, "Fetch the logs of a container")
    v.add_argument("-f", "--follow", action="store_true", help="follow log output")
    v.add_argument("-n", "--tail", default="all", help="number of lines to show from the end")
    v.add_argument("--since", help="show logs since timestamp or relative (e.g. 42m)")
    v.add_argument("--until", help="show logs before a timestamp or relative")
    v.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    v.add_argument("container")
    v = verb("exec", cmd_exec, "Execute a command in a running container")
    v.add_argument("-i", "--interactive", action="store_true")
    v.add_argument("-t", "--tty", action="store_true")
    v.add_argument("-d", "--detach", action="store_true")
    v.add_argument("-e", "--env", action="append", default=[])
    v.add_argument("-w", "--workdir")
    v.add_argument("-u", "--user")
    v.add_argument("container")
    v.add_argument("command", nargs=argparse.REMAINDER)
    v = verb("top", cmd_top, "Display the running processes of a container")
    v.add_argument("container")
    v.add_argument("ps_args", nargs=argparse.REMAINDER)

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
    netcmds.add_verbs(sub, verb)
    v = verb("login", cmd_login, "Log in to a registry")
    v.add_argument("-u", "--username")
    v.add_argument("-p", "--password")
    v.add_argument("--password-stdin", action="store_true")
    v.add_argument("server", nargs="?", default="docker.io")
    v = verb("logout", cmd_logout, "Log out from a registry")
    v.add_argument("server", nargs="?", default="docker.io")
    systemdcmds.add_verbs(sub, verb)
    tlscmds.add_verbs(sub, verb)
    verb("version", cmd_version, "Show the sdcontainer version information")
    v = verb("info", cmd_info, "Display system-wide information")
    v.add_argument("-f", "--format")
    v = verb("events", cmd_events, "Get real time events from the server")
    v.add_argument("--filter-container", help="only events of this container")
    v.add_argument("--format")
    return p


RUN_VERBS = ("run", "create")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the sdcontainer command."""
    args = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except Usage as e:
        print(e, file=sys.stderr)
        return 125 if args[:1] and args[0] in RUN_VERBS else 1
    except SystemExit as e:
        return int(e.code or 0)
    if not getattr(ns, "handler", None):
        parser.print_help()
        return 0
    prefix = "sdcontainer: " if ns.verb in RUN_VERBS else ""
    try:
        code: int = ns.handler(Client(), ns)
        return code
    except APIError as e:
        print(f"{prefix}Error response from daemon: {e}", file=sys.stderr)
        return 125 if ns.verb in RUN_VERBS else 1
    except StartError as e:
        print(f"{prefix}{e}", file=sys.stderr)
        return exec_exit_code(e.message) if ns.verb == "run" else 1
    except (SdcError, InvalidArgument) as e:
        print(f"{prefix}{e}", file=sys.stderr)
        return 125 if ns.verb in RUN_VERBS else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            sys.stdout.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
