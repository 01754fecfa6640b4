"""`run`/`create` flags, docker's names and meanings, and their translation into a create body."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from ..errors import InvalidArgument
from .systemdcmds import add_flags as add_systemd_flags
from .systemdcmds import add_to_body as add_systemd_body

UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(value: str) -> int:
    """docker's 64m, 1g, 512k, 1048576."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", value.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: {value!r}")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def add_container_flags(p: argparse.ArgumentParser) -> None:
    """The flags `run` and `create` share."""
    a = p.add_argument
    a("--name", help="assign a name to the container")
    a("-e", "--env", action="append", default=[], help="set environment variables")
    a("--env-file", action="append", default=[], help="read in a file of environment variables")
    a("-w", "--workdir", help="working directory inside the container")
    a("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    a("-h", "--hostname", help="container host name")
    a("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    a("-i", "--interactive", action="store_true", help="keep STDIN open even if not attached")
    a("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    a("-v", "--volume", action="append", default=[], help="bind mount a volume (HOST:CTR[:ro])")
    a("--mount", action="append", default=[], help="attach a mount (type=bind|tmpfs,...)")
    a("--tmpfs", action="append", default=[], help="mount a tmpfs directory (PATH[:OPTS])")
    a("--read-only", action="store_true", help="mount the container's root filesystem read-only")
    a("--stop-signal", help="signal to stop the container")
    a("--stop-timeout", type=int, help="timeout (in seconds) to stop a container")
    a("-m", "--memory", help="memory limit")
    a("--cpus", help="number of CPUs")
    a("--pids-limit", type=int, help="tune container pids limit (-1 for unlimited)")
    a("--init", action="store_true", help="run an init inside the container that forwards "
      "signals and reaps processes")
    a("--rm", action="store_true", help="automatically remove the container when it exits")
    a("-l", "--label", action="append", default=[], help="set meta data on a container")
    a("--network", "--net", action="append", default=[], help="connect a container to a network")
    a("-p", "--publish", action="append", default=[],
      help="publish a container's port(s) to the host ([ip:][hostport:]port[/proto])")
    a("--link", action="append", default=[], help="add link to another container (NAME[:ALIAS])")
    a("--network-alias", "--net-alias", action="append", default=[],
      help="add network-scoped alias for the container")
    a("--dns", action="append", default=[], help="set custom DNS servers")
    a("--dns-search", action="append", default=[], help="set custom DNS search domains")
    a("--dns-option", "--dns-opt", action="append", default=[], help="set DNS options")
    a("--add-host", action="append", default=[], help="add a custom host-to-IP mapping (host:ip)")
    a("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    a("--mac-address", help="container MAC address (e.g., 92:d0:c6:0a:29:33)")
    a("--platform", help="set platform if server is multi-platform capable")
    a("--privileged", action="store_true", help="give extended privileges to this container")
    a("--cap-add", action="append", default=[], help="add Linux capabilities")
    a("--cap-drop", action="append", default=[], help="drop Linux capabilities")
    a("--security-opt", action="append", default=[], help="security options")
    a("--device", action="append", default=[],
      help="add a host device to the container (HOST[:CONTAINER][:PERMS])")
    a("--group-add", action="append", default=[], help="add additional groups to join")
    a("--userns", help="user namespace: auto (a subordinate id range from /etc/subuid) or host")
    add_systemd_flags(p)  # --restart, --health-*, --sdnotify
    a("image", help="the image to run")
    a("command", nargs=argparse.REMAINDER, help="the command and its arguments")


def read_env_file(path: str) -> list[str]:
    """docker's --env-file: KEY=VALUE lines, KEY alone takes our own environment's value."""
    result = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InvalidArgument(f"open {path}: {e.strerror}") from None
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        result.append(line if "=" in line else f"{line}={os.environ.get(line, '')}")
    return result


def parse_mount_flag(value: str) -> dict[str, Any]:
    """--mount type=bind,source=/a,target=/b,readonly as HostConfig.Mounts entry."""
    m: dict[str, Any] = {"Type": "volume"}
    for field in value.split(","):
        key, _, val = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            m["Type"] = val
        elif key in ("source", "src"):
            m["Source"] = val
        elif key in ("target", "destination", "dst"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = val.lower() not in ("0", "false")
        elif key == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_bytes(val)
        elif key == "tmpfs-mode":
            m.setdefault("TmpfsOptions", {})["Mode"] = int(val, 8)
        elif key in ("bind-propagation", "consistency"):
            pass
        else:
            raise InvalidArgument(f"unexpected key {key!r} in --mount {value!r}")
    return m


PUBLISH_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<host>\d+(?:-\d+)?)?:)?"
    r"(?P<ctr>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp))?$")


def _port_range(text: str, spec: str) -> list[int]:
    first, _, last = text.partition("-")
    a, b = int(first), int(last or first)
    if b < a or not 0 <= a <= 65535 or b > 65535:
        raise InvalidArgument(f"invalid port range in {spec!r}")
    return list(range(a, b + 1))


def parse_publish(spec: str) -> list[tuple[str, dict[str, str]]]:
    """-p [ip:][hostport:]port[/proto] as docker's CLI expands it: one binding per port."""
    m = PUBLISH_RE.match(spec.strip())
    if not m:
        raise InvalidArgument(f"invalid publish specification: {spec!r}")
    ctr = _port_range(m.group("ctr"), spec)
    host = _port_range(m.group("host"), spec) if m.group("host") else []
    if host and len(host) != len(ctr):
        raise InvalidArgument(f"invalid publish specification {spec!r}: ranges differ in size")
    proto = m.group("proto") or "tcp"
    ip = (m.group("ip") or "").strip("[]")
    return [(f"{c}/{proto}", {"HostIp": ip, "HostPort": str(host[i]) if host else ""})
            for i, c in enumerate(ctr)]


def security_opt(opt: str) -> str:
    """As docker's CLI: a seccomp profile given as a file is sent as its content."""
    key, sep, value = opt.partition("=")
    if key == "seccomp" and sep and value not in ("unconfined", "") and \
            not value.startswith("{"):
        try:
            with open(value) as f:
                return f"seccomp={f.read()}"
        except OSError as e:
            raise InvalidArgument(f"opening seccomp profile ({value}) failed: "
                                  f"{e.strerror}") from None
    return opt


def device(spec: str) -> dict[str, str]:
    """--device HOST[:CONTAINER][:PERMS] as HostConfig.Devices wants it."""
    parts = spec.split(":")
    inner = parts[1] if len(parts) > 1 and parts[1].startswith("/") else parts[0]
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    return {"PathOnHost": parts[0], "PathInContainer": inner, "CgroupPermissions": perms}


def create_body(ns: argparse.Namespace) -> dict[str, Any]:
    """A docker create body from parsed run/create flags."""
    env = [e if "=" in e else f"{e}={os.environ.get(e, '')}" for e in ns.env]
    for f in ns.env_file:
        env = read_env_file(f) + env
    labels = dict(lbl.split("=", 1) if "=" in lbl else (lbl, "") for lbl in ns.label)
    if len(ns.network) > 1:
        raise InvalidArgument("--network given more than once: sdcontainer supports one network "
                              "per container at create time (use `network connect` for more)")
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in ns.publish:
        for key, binding in parse_publish(spec):
            bindings.setdefault(key, []).append(binding)
    host: dict[str, Any] = {
        "PortBindings": bindings or None,
        "Links": ns.link or None,
        "Dns": ns.dns or None,
        "DnsSearch": ns.dns_search or None,
        "DnsOptions": ns.dns_option or None,
        "ExtraHosts": ns.add_host or None,
        "Binds": ns.volume or None,
        "Mounts": [parse_mount_flag(m) for m in ns.mount] or None,
        "Tmpfs": {t.split(":", 1)[0]: (t.split(":", 1)[1] if ":" in t else "")
                  for t in ns.tmpfs} or None,
        "ReadonlyRootfs": ns.read_only, "AutoRemove": ns.rm, "Init": ns.init or None,
        "NetworkMode": ns.network[0] if ns.network else "default",
    }
    if ns.memory:
        host["Memory"] = parse_bytes(ns.memory)
    if ns.cpus:
        try:
            host["NanoCpus"] = int(float(ns.cpus) * 1e9)
        except ValueError:
            raise InvalidArgument(f"invalid argument {ns.cpus!r} for --cpus") from None
    if ns.pids_limit is not None:
        host["PidsLimit"] = ns.pids_limit
    host["Privileged"] = ns.privileged
    host["CapAdd"] = ns.cap_add or None
    host["CapDrop"] = ns.cap_drop or None
    host["SecurityOpt"] = [security_opt(o) for o in ns.security_opt] or None
    host["GroupAdd"] = ns.group_add or None
    host["UsernsMode"] = ns.userns or None
    host["Devices"] = [device(d) for d in ns.device] or None
    body: dict[str, Any] = {
        "Image": ns.image, "Env": env, "Labels": labels, "Tty": ns.tty,
        "OpenStdin": ns.interactive, "StdinOnce": ns.interactive,
        "AttachStdin": ns.interactive, "AttachStdout": True, "AttachStderr": True,
        "HostConfig": host,
    }
    if ns.command:
        body["Cmd"] = ns.command
    if ns.network_alias or ns.ip:
        net = ns.network[0] if ns.network else "bridge"
        body["NetworkingConfig"] = {"EndpointsConfig": {net: {
            "Aliases": ns.network_alias or None,
            "IPAMConfig": {"IPv4Address": ns.ip} if ns.ip else None}}}
    if ns.mac_address:
        body["MacAddress"] = ns.mac_address
    exposed: dict[str, dict[str, str]] = {key: {} for key in bindings}
    if exposed:
        body["ExposedPorts"] = exposed
    if ns.entrypoint is not None:
        body["Entrypoint"] = [ns.entrypoint] if ns.entrypoint else []
    for key, value in (("WorkingDir", ns.workdir), ("User", ns.user),
                       ("Hostname", ns.hostname), ("StopSignal", ns.stop_signal)):
        if value:
            body[key] = value
    if ns.stop_timeout is not None:
        body["StopTimeout"] = ns.stop_timeout
    add_systemd_body(ns, body)
    return body
