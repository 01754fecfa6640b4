"""The systemd-native verbs and flags: --restart, --health-*, --sdnotify, pause,
unpause, `generate systemd` and `healthcheck run`.

`--sdnotify` (podman's) is for a `run` that is the main process of a
Type=notify service (the generated units): the command does not stream the
container's output (it is in the journal already, under the container's
scope), relays signals, and exits with the container.  With `conmon` it sends
READY=1 itself once the container has started; with `container` the workload
gets NOTIFY_SOCKET, a socket this command owns and relays to systemd.  The
relay is ours, not the monitor's, because systemd accepts notifications only
from processes of the service's own cgroup, and the container (with its
monitor) lives in its own scope: the main PID therefore stays this command's,
and a MAINPID= from the workload is dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import sys
import threading
from typing import Any

from ..errors import InvalidArgument
from . import attach, formatting
from .client import Client

NOTIFY_DIR = "/run/sdcontainer/notify"
NOTIFY_TARGET = "/run/notify"  # where the workload sees the socket's directory (podman's)
_notify_socket: socket.socket | None = None
_notify_dir = ""


def add_flags(p: argparse.ArgumentParser) -> None:
    """run/create flags."""
    a = p.add_argument
    a("--restart", default="no",
      help="restart policy: no, on-failure[:max-retries], always, unless-stopped")
    a("--health-cmd", help="command to run to check health")
    a("--health-interval", help="time between running the check (ms|s|m|h) (default 30s)")
    a("--health-timeout", help="maximum time to allow one check to run (default 30s)")
    a("--health-retries", type=int, help="consecutive failures needed to report unhealthy")
    a("--health-start-period", help="start period for the container to initialize before "
      "counting retries towards unstable (default 0s)")
    a("--health-on-failure", choices=["none", "restart", "kill", "stop"],
      help="action when the container turns unhealthy (default none)")
    a("--no-healthcheck", action="store_true", help="disable any container-specified HEALTHCHECK")
    a("--sdnotify", choices=["container", "conmon", "ignore"],
      help="under a Type=notify service: who sends READY=1 (see sdcontainer(1))")


def duration_ns(value: str, flag: str) -> int:
    """docker's 1h30m, 500ms, 10s as nanoseconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidArgument(f"invalid argument {value!r} for {flag}: use e.g. 30s, 1m30s, 500ms")
    scale = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9}
    return int(sum(float(n) * scale[u] for n, u in parts))


def parse_restart(text: str) -> dict[str, Any]:
    """--restart as HostConfig.RestartPolicy."""
    name, _, count = text.partition(":")
    if count and not count.isdigit():
        raise InvalidArgument(f"invalid restart policy {text!r}: bad retry count")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def add_to_body(ns: argparse.Namespace, body: dict[str, Any]) -> None:
    """Put our flags into a create body."""
    body["HostConfig"]["RestartPolicy"] = parse_restart(ns.restart)
    if ns.no_healthcheck:
        body["Healthcheck"] = {"Test": ["NONE"]}
    elif ns.health_cmd or any(getattr(ns, f"health_{k}") for k in
                              ("interval", "timeout", "retries", "start_period")):
        hc: dict[str, Any] = {}
        if ns.health_cmd:
            hc["Test"] = ["CMD-SHELL", ns.health_cmd]
        for key, flag in (("Interval", "interval"), ("Timeout", "timeout"),
                          ("StartPeriod", "start_period")):
            value = getattr(ns, f"health_{flag}")
            if value:
                hc[key] = duration_ns(value, f"--health-{flag.replace('_', '-')}")
        if ns.health_retries is not None:
            hc["Retries"] = ns.health_retries
        body["Healthcheck"] = hc
    if ns.health_on_failure:
        body["HealthCheckOnFailureAction"] = ns.health_on_failure
    if (getattr(ns, "sdnotify", None) == "container" and os.environ.get("NOTIFY_SOCKET")
            and getattr(ns, "detach", None) is False):
        body["HostConfig"]["Binds"] = [*(body["HostConfig"].get("Binds") or []),
                                       f"{open_notify_socket()}:{NOTIFY_TARGET}"]
        body["Env"] = [*body.get("Env", []), f"NOTIFY_SOCKET={NOTIFY_TARGET}/notify.sock"]


# -- sd_notify -----------------------------------------------------------------

def open_notify_socket() -> str:
    """A datagram socket for the workload, in a directory of its own; the directory."""
    global _notify_socket, _notify_dir
    os.makedirs(NOTIFY_DIR, mode=0o755, exist_ok=True)
    _notify_dir = os.path.join(NOTIFY_DIR, f"{os.getpid()}-{os.urandom(4).hex()}")
    os.mkdir(_notify_dir, 0o755)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(os.path.join(_notify_dir, "notify.sock"))
    os.chmod(os.path.join(_notify_dir, "notify.sock"), 0o777)  # any user in the container
    _notify_socket = s
    return _notify_dir


def sd_notify(message: bytes) -> None:
    """Send MESSAGE to our service manager's NOTIFY_SOCKET (nothing if there is none)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message)


def relay(sock: socket.socket) -> None:
    """Forward the workload's notifications, minus MAINPID= (the main PID stays ours)."""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        lines = [ln for ln in data.split(b"\n") if ln and not ln.startswith(b"MAINPID=")]
        if lines:
            with contextlib.suppress(OSError):
                sd_notify(b"\n".join(lines))


def run_notified(client: Client, cid: str, ns: argparse.Namespace) -> int:
    """`run --sdnotify=...` in the foreground of a service: start, notify, relay, wait."""
    w, result = client.wait_later(cid, "removed" if ns.rm else "next-exit")
    try:
        if _notify_socket is not None:
            threading.Thread(target=relay, args=(_notify_socket,), daemon=True).start()
        client.start_or_remove(cid)
        if ns.sdnotify == "conmon":
            sd_notify(f"READY=1\nSTATUS=container {ns.name or cid[:12]} started".encode())
        with attach.proxy_signals(client, cid, True):
            while w.is_alive():
                w.join(0.5)
    finally:
        if _notify_dir:
            shutil.rmtree(_notify_dir, ignore_errors=True)
    if "error" in result:
        raise result["error"]
    return int(result.get("StatusCode", 0))


# -- verbs ----------------------------------------------------------------------

def cmd_pause(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.containers, lambda c: client.call("POST", f"/containers/{c}/pause"))


def cmd_unpause(client: Client, ns: argparse.Namespace) -> int:
    return formatting.each(ns.containers, lambda c: client.call("POST", f"/containers/{c}/unpause"))


def cmd_generate_systemd(client: Client, ns: argparse.Namespace) -> int:
    from ..systemd import generator

    info = client.call("GET", f"/containers/{ns.container}/json")
    c = generator.from_inspect(info)
    if ns.restart_policy:
        c.restart = ns.restart_policy
    if ns.name_file:
        path = os.path.join(os.getcwd(), generator.unit_name(c))
        with open(path, "w") as f:
            f.write(generator.render(c))
        print(path)
    else:
        sys.stdout.write(generator.render(c))
    return 0


def cmd_healthcheck_run(client: Client, ns: argparse.Namespace) -> int:
    health = client.call("POST", f"/containers/{ns.container}/healthcheck")
    last = (health.get("Log") or [{}])[-1]
    print(health.get("Status", ""))
    return 0 if last.get("ExitCode") == 0 else 1


def add_verbs(sub: Any, verb: Any) -> None:
    """pause, unpause, generate systemd, healthcheck run."""
    v = verb("pause", cmd_pause, "Pause all processes within one or more containers")
    v.add_argument("containers", nargs="+")
    v = verb("unpause", cmd_unpause, "Unpause all processes within one or more containers")
    v.add_argument("containers", nargs="+")
    gen = sub.add_parser("generate", help="Generate structured data (systemd units)")
    gsub = gen.add_subparsers(dest="generate_verb", metavar="COMMAND", required=True)
    v = verb("systemd", cmd_generate_systemd,
             "Print a systemd service that runs a container like this one", parent=gsub)
    v.add_argument("--files", "-f", dest="name_file", action="store_true",
                   help="write sdcontainer-NAME.service in the current directory")
    v.add_argument("--restart-policy", help="the service's restart policy (default: the "
                   "container's)")
    v.add_argument("container")
    hc = sub.add_parser("healthcheck", help="Manage healthchecks")
    hsub = hc.add_subparsers(dest="healthcheck_verb", metavar="COMMAND", required=True)
    v = verb("run", cmd_healthcheck_run, "Run a container's healthcheck now", parent=hsub)
    v.add_argument("container")
