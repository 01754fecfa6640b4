"""Container verbs: run, create, start, stop, ps, inspect, logs, exec, attach, top, ..."""

from __future__ import annotations

import argparse
import os
import sys

from . import formatting
from .client import APIError, Client, StartError, Usage, read_frames

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM"}
PS_DEFAULT = ("table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}"
              "\\t{{.Ports}}\\t{{.Names}}")


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
    from . import imagecmds
    from .options import create_body

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


USAGES = {"run": ("IMAGE [COMMAND] [ARG...]", 1), "create": ("IMAGE [COMMAND] [ARG...]", 1),
          "exec": ("CONTAINER COMMAND [ARG...]", 2)}


def missing_arguments(verb: str) -> int:
    """docker's answer to a verb without its arguments (`docker run` alone): what it
    needs, its usage line, exit status 1."""
    args, n = USAGES[verb]
    print(f"sdcontainer: 'sdcontainer {verb}' requires at least {n} argument"
          f"{'s' if n > 1 else ''}\n\nUsage:  sdcontainer {verb} [OPTIONS] {args}\n\n"
          f"See 'sdcontainer {verb} --help' for more information", file=sys.stderr)
    return 1


def cmd_create(client: Client, ns: argparse.Namespace) -> int:
    if ns.image is None:
        return missing_arguments("create")
    print(create(client, ns))
    return 0


def cmd_run(client: Client, ns: argparse.Namespace) -> int:
    from . import attach

    if ns.image is None:
        return missing_arguments("run")
    detach_keys = attach.check_detach_keys(ns.detach_keys, from_config=not ns.detach)
    cid = create(client, ns)
    if ns.sdnotify and not ns.detach:  # the main process of a (generated) service
        from . import systemdcmds

        return systemdcmds.run_notified(client, cid, ns)
    if ns.detach:
        client.start_or_remove(cid)
        print(cid)
        return 0
    return attached_start(client, cid, tty=ns.tty, stdin=ns.interactive,
                          condition="removed" if ns.rm else "next-exit",
                          detach_keys=detach_keys, sig_proxy=ns.sig_proxy)


def attached_start(client: Client, cid: str, *, tty: bool, stdin: bool, condition: str,
                   detach_keys: str | None = None, sig_proxy: bool = True) -> int:
    """Attach, start, stream until the end (or a detach), and return the exit status."""
    from . import attach

    query: dict[str, Any] = {"stream": True, "stdin": stdin, "stdout": True, "stderr": True}
    if stdin:
        query["detachKeys"] = detach_keys or attach.DEFAULT_DETACH_KEYS
    sock = client.hijack(f"/containers/{cid}/attach", query)
    w, result = client.wait_later(cid, condition)
    try:
        client.call("POST", f"/containers/{cid}/start")
    except APIError as e:
        sock.close()
        w.join(5)
        raise StartError(str(e)) from None
    with attach.proxy_signals(client, cid, sig_proxy and not tty):
        if attach.stream(sock, tty=tty, stdin=stdin, detach_keys=detach_keys,
                         resize=lambda h, w_: client.call(
                             "POST", f"/containers/{cid}/resize", {"h": h, "w": w_})):
            return 0
        w.join()
    if "error" in result:
        raise result["error"]
    return int(result.get("StatusCode", 0))


def cmd_start(client: Client, ns: argparse.Namespace) -> int:
    from . import attach

    if ns.attach or ns.interactive:
        if len(ns.containers) > 1:
            raise Usage("you cannot start and attach multiple containers at once")
        detach_keys = attach.check_detach_keys(ns.detach_keys)
        info = client.call("GET", f"/containers/{ns.containers[0]}/json")
        if info["State"].get("Running"):
            return attach_running(client, info, stdin=ns.interactive,
                                  detach_keys=detach_keys, sig_proxy=True)
        return attached_start(client, info["Id"], tty=info["Config"]["Tty"],
                              stdin=ns.interactive and bool(info["Config"].get("OpenStdin")),
                              condition="next-exit", detach_keys=detach_keys)
    return formatting.each(ns.containers, lambda c: client.call("POST", f"/containers/{c}/start"))


def attach_running(client: Client, info: dict[str, Any], *, stdin: bool,
                   detach_keys: str | None, sig_proxy: bool) -> int:
    """docker attach: join a running container's streams until it ends or we detach."""
    from . import attach

    cid, tty = info["Id"], bool(info["Config"]["Tty"])
    stdin = stdin and bool(info["Config"].get("OpenStdin"))
    query: dict[str, Any] = {"stream": True, "stdin": stdin, "stdout": True, "stderr": True,
                             "logs": False}
    if stdin:
        query["detachKeys"] = detach_keys or attach.DEFAULT_DETACH_KEYS
    sock = client.hijack(f"/containers/{cid}/attach", query)
    with attach.proxy_signals(client, cid, sig_proxy and not tty):
        if attach.stream(sock, tty=tty, stdin=stdin, detach_keys=detach_keys,
                         resize=lambda h, w: client.call(
                             "POST", f"/containers/{cid}/resize", {"h": h, "w": w})):
            return 0
    answer = client.call("POST", f"/containers/{cid}/wait")
    return int(answer.get("StatusCode", 0)) if isinstance(answer, dict) else 0


def cmd_attach(client: Client, ns: argparse.Namespace) -> int:
    from . import attach

    detach_keys = attach.check_detach_keys(ns.detach_keys)
    info = client.call("GET", f"/containers/{ns.container}/json")
    if not info["State"].get("Running"):
        raise Usage("You cannot attach to a stopped container, start it first")
    if info["State"].get("Paused"):
        raise Usage("You cannot attach to a paused container, unpause it first")
    return attach_running(client, info, stdin=not ns.no_stdin, detach_keys=detach_keys,
                          sig_proxy=ns.sig_proxy)


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
                lambda c: client.call("DELETE", f"/containers/{c}",
                                      {"force": ns.force or None, "v": ns.volumes or None}))


def cmd_wait(client: Client, ns: argparse.Namespace) -> int:
    def wait(c: str) -> None:
        print(client.call("POST", f"/containers/{c}/wait")["StatusCode"])
    return formatting.each(ns.containers, wait, echo=False)


def cmd_ps(client: Client, ns: argparse.Namespace) -> int:
    import re

    # As docker: sizes are asked for with -s, or when a --format uses .Size.
    size = ns.size or (not ns.quiet and bool(ns.format)
                       and re.search(r"\.Size\b", ns.format) is not None)
    found = client.call("GET", "/containers/json", {
        "all": ns.all or None, "limit": 1 if ns.latest else ns.last,
        "filters": formatting.filters_arg(ns.filter), "size": size or None})
    if ns.quiet:
        for c in found:
            print(c["Id"] if ns.no_trunc else c["Id"][:12])
        return 0
    rows = [formatting.ps_row(c, ns.no_trunc) for c in found]
    for row, c in zip(rows, found, strict=True):
        row["Size"] = size_column(c)
    default = PS_DEFAULT + ("\\t{{.Size}}" if ns.size else "")
    fmt = default if ns.format == "table" else ns.format
    formatting.emit(formatting.listing(fmt, rows, PS_HEADERS, default))
    return 0


def size_column(c: dict[str, Any]) -> str:
    """docker's SIZE: what the container wrote, and with its image's ("12B (virtual 4.5MB)")."""
    rw, root = int(c.get("SizeRw") or 0), int(c.get("SizeRootFs") or 0)
    text = formatting.human_size(rw)
    return f"{text} (virtual {formatting.human_size(root)})" if root > 0 else text


def cmd_inspect(client: Client, ns: argparse.Namespace) -> int:
    results, rc = [], 0
    tmpl = formatting.template(ns.format) if ns.format and ns.format != "json" else None
    for name in ns.names:
        try:
            if ns.type in (None, "container"):
                try:
                    results.append(client.call("GET", f"/containers/{name}/json"))
                    continue
                except APIError as e:
                    if e.status != 404 or ns.type == "container":
                        raise
            if ns.type in (None, "image"):
                try:
                    results.append(client.call("GET", f"/images/{name}/json"))
                    continue
                except APIError as e:
                    if e.status != 404 or ns.type == "image":
                        raise
            results.append(client.call("GET", f"/networks/{name}"))
        except APIError as e:
            print(f"Error: No such object: {name}" if e.status == 404 else f"Error: {e}",
                  file=sys.stderr)
            rc = 1
    if tmpl is not None:
        for r in results:
            print(formatting.execute(tmpl, r))
    else:
        formatting.print_inspected(results, None)
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

    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if m:
        seconds = float(m.group(1)) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
                                       "h": 3600}[m.group(2)]
        return f"{time.time() - seconds:.6f}"
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    try:
        return str(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise Usage(f"invalid time value {value!r}") from None


def cmd_exec(client: Client, ns: argparse.Namespace) -> int:
    from . import attach

    if ns.container is None or not ns.command:
        return missing_arguments("exec")
    detach_keys = attach.check_detach_keys(ns.detach_keys, from_config=not ns.detach)
    env = [e if "=" in e else f"{e}={os.environ.get(e, '')}" for e in ns.env]
    if ns.env_file:
        from .options import read_env_file

        # As docker: the files first, in order, then -e (a later value wins).
        env = [e for f in ns.env_file for e in read_env_file(f)] + env
    answer = client.call("POST", f"/containers/{ns.container}/exec", body={
        "Cmd": ns.command, "Env": env, "WorkingDir": ns.workdir or "", "User": ns.user or "",
        "Tty": ns.tty, "AttachStdin": ns.interactive, "AttachStdout": not ns.detach,
        "AttachStderr": not ns.detach, "Privileged": ns.privileged,
        **({"DetachKeys": detach_keys} if detach_keys else {})})
    eid = answer["Id"]
    if ns.detach:
        client.call("POST", f"/exec/{eid}/start", body={"Detach": True})
        return 0
    try:
        sock = client.hijack(f"/exec/{eid}/start", body={"Detach": False, "Tty": ns.tty})
    except APIError as e:
        print(f"Error response from daemon: {e}", file=sys.stderr)
        return exec_exit_code(str(e))
    if attach.stream(sock, tty=ns.tty, stdin=ns.interactive, detach_keys=detach_keys,
                     resize=lambda h, w: client.call("POST", f"/exec/{eid}/resize",
                                                     {"h": h, "w": w})):
        return 0  # detached: the command goes on
    info = client.call("GET", f"/exec/{eid}/json")
    code = info.get("ExitCode")
    return int(code) if code is not None else 0


def cmd_top(client: Client, ns: argparse.Namespace) -> int:
    answer = client.call("GET", f"/containers/{ns.container}/top",
                         {"ps_args": " ".join(ns.ps_args) or None})
    print(formatting.table(answer["Titles"], answer["Processes"]))
    return 0


# docker's precedence, so that one setting in docker's config.json serves both CLIs.
DETACH_KEYS_HELP = ("override the key sequence for detaching (default: detachKeys in "
                    "$DOCKER_CONFIG/config.json or ~/.docker/config.json, else ctrl-p,ctrl-q)")


def add_verbs(sub: Any, verb: Callable[..., argparse.ArgumentParser]) -> None:
    """The container verbs, at the top level (`container ...` maps onto them)."""
    for name, handler, text in (("run", cmd_run, "Create and run a new container from an image"),
                                ("create", cmd_create, "Create a new container")):
        v = verb(name, handler, text, conflict_h=True)
        if not isinstance(v, argparse.ArgumentParser):
            continue  # not the verb asked for: the flag table is not even imported
        if name == "run":
            v.add_argument("-d", "--detach", action="store_true",
                           help="run container in background and print container ID")
        from .options import add_container_flags

        add_container_flags(v)
        if name == "run":
            add_once(v, "--detach-keys", help=DETACH_KEYS_HELP)
            add_once(v, "--sig-proxy", type=boolean, default=True, nargs="?", const=True,
                     help="proxy received signals to the process (default true)")
    v = verb("start", cmd_start, "Start one or more stopped containers")
    v.add_argument("-a", "--attach", action="store_true", help="attach STDOUT/STDERR")
    v.add_argument("-i", "--interactive", action="store_true", help="attach STDIN")
    v.add_argument("--detach-keys", help=DETACH_KEYS_HELP)
    v.add_argument("containers", nargs="+")
    v = verb("attach", cmd_attach,
             "Attach local standard input, output, and error streams to a running container")
    v.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    v.add_argument("--sig-proxy", type=boolean, default=True, nargs="?", const=True,
                   help="proxy all received signals to the process (default true)")
    v.add_argument("--detach-keys", help=DETACH_KEYS_HELP)
    v.add_argument("container")
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
    v.add_argument("-v", "--volumes", action="store_true",
                   help="remove the anonymous volumes of the container")
    v.add_argument("containers", nargs="+")
    v = verb("wait", cmd_wait, "Block until containers stop, then print their exit codes")
    v.add_argument("containers", nargs="+")
    v = verb("ps", cmd_ps, "List containers")
    v.add_argument("-a", "--all", action="store_true", help="show all containers")
    v.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    v.add_argument("-l", "--latest", action="store_true", help="show the latest created container")
    v.add_argument("-n", "--last", type=int, help="show n last created containers")
    v.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    v.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    add_filter_format(v)
    v = verb("inspect", cmd_inspect, "Return low-level information on objects")
    v.add_argument("-f", "--format", help="format output using a Go template")
    v.add_argument("-s", "--size", action="store_true", help="(accepted) display total sizes")
    v.add_argument("--type", choices=["container", "image", "network"],
                   help="return JSON for the specified type only")
    v.add_argument("names", nargs="+")
    v = verb("logs", cmd_logs, "Fetch the logs of a container")
    v.add_argument("-f", "--follow", action="store_true", help="follow log output")
    v.add_argument("-n", "--tail", default="all", help="number of lines to show from the end")
    v.add_argument("--since", help="show logs since timestamp or relative (e.g. 42m)")
    v.add_argument("--until", help="show logs before a timestamp or relative")
    v.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    v.add_argument("container")
    v = verb("exec", cmd_exec, "Execute a command in a running container")
    v.add_argument("-i", "--interactive", action="store_true",
                   help="keep STDIN open even if not attached")
    v.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    v.add_argument("-d", "--detach", action="store_true",
                   help="detached mode: run the command in the background")
    v.add_argument("-e", "--env", action="append", default=[],
                   help="set an environment variable (KEY=VALUE, or KEY to pass ours)")
    v.add_argument("--env-file", action="append", default=[],
                   help="read in a file of environment variables")
    v.add_argument("-w", "--workdir", help="working directory inside the container")
    v.add_argument("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    v.add_argument("--privileged", action="store_true",
                   help="give extended privileges to the command (every capability, "
                   "no seccomp filter)")
    v.add_argument("--detach-keys", help=DETACH_KEYS_HELP)
    v.add_argument("container", nargs="?")
    v.add_argument("command", nargs=argparse.REMAINDER)
    v = verb("top", cmd_top, "Display the running processes of a container")
    v.add_argument("container")
    v.add_argument("ps_args", nargs=argparse.REMAINDER)


def boolean(text: str) -> bool:
    """Go's strconv.ParseBool, for flags such as --sig-proxy=false."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def add_once(p: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """Add FLAG unless the shared flag table already has it."""
    if isinstance(p, argparse.ArgumentParser) and flag not in p._option_string_actions:
        p.add_argument(flag, **kwargs)


def add_filter_format(v: argparse.ArgumentParser) -> None:
    """docker's -f/--filter key=value (repeatable) and --format of a listing."""
    v.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output based on conditions provided (key=value)")
    v.add_argument("--format", help="format output: table, json or a Go template")
