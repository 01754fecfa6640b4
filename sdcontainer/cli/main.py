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
from . import attach, formatting, imagecmds, netcmds, systemdcmds, tlscmds
from .client import APIError, Client, StartError, Usage, read_frames
from .options import add_container_flags, create_body

Handler = Callable[[Client, argparse.Namespace], int]


def exec_exit_code(message: str) -> int:
    """docker's mapping of a start failure to 126/127."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "exec format error" in lowered:
        return 126
    return 125


def create(client: Client, ns: argparse.Namespace) -> str:
    """Create the container NS describes, pulling its image if it is missing."""
    body = create_body(ns)
    try:
        answer = client.call("POST", "/containers/create", {"name": ns.name}, body)
    except APIError as e:
        if e.status != 404 or "image" not in str(e).lower():
            raise
        print(f"Unable to find image '{ns.image}' locally", file=sys.stderr)
        imagecmds.pull(client, ns.image, quiet=False, platform=ns.platform)
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
        client.start_or_remove(cid)
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

    imagecmds.add_verbs(sub, verb, cmd_inspect)
    netcmds.add_verbs(sub, verb)
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
