"""`run`/`create` flags, docker's names and meanings, and their translation into a create body."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from ..errors import InvalidArgument
from ..util import runflags
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
    """The flags `run` and `create` share, from the one flag table."""
    for flag in runflags.FLAGS:
        if not flag.parser:
            continue
        extra: dict[str, Any] = {"choices": flag.choices} if flag.choices else {}
        if flag.kind == "bool":
            p.add_argument(*flag.names, action="store_true", help=flag.help)
        elif flag.kind in ("list", "map"):
            p.add_argument(*flag.names, action="append", default=[], help=flag.help, **extra)
        else:
            p.add_argument(*flag.names, type=int if flag.kind == "int" else str,
                           help=flag.help, **extra)
    add_systemd_flags(p)  # --restart, --health-*, --sdnotify
    # Optional to argparse: without it the verb says what docker says (missing_arguments).
    p.add_argument("image", nargs="?", help="the image to run")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="the command and its arguments")


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
        elif key == "volume-nocopy":
            m.setdefault("VolumeOptions", {})["NoCopy"] = val.lower() not in ("0", "false")
        elif key == "volume-label":
            k, _, v = val.partition("=")
            m.setdefault("VolumeOptions", {}).setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = val
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {}) \
                .setdefault("Options", {})[k] = v
        elif key == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = val
        elif key == "consistency":
            pass  # a macOS setting docker's CLI takes and ignores on Linux
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


def resource_fields(ns: argparse.Namespace) -> dict[str, Any]:
    """The HostConfig fields of the namespace, resource, logging and runtime flags
    (only those given: the daemon's defaults stay the daemon's)."""
    host: dict[str, Any] = {}
    for key, value in (("IpcMode", ns.ipc), ("UTSMode", ns.uts), ("PidMode", ns.pid),
                       ("CgroupnsMode", ns.cgroupns), ("CgroupParent", ns.cgroup_parent),
                       ("CpusetCpus", ns.cpuset_cpus),
                       ("Isolation", ns.isolation), ("Runtime", ns.runtime),
                       ("VolumeDriver", ns.volume_driver), ("CpuShares", ns.cpu_shares),
                       ("MemorySwappiness", ns.memory_swappiness)):
        if value is not None:
            host[key] = value
    if ns.shm_size:
        host["ShmSize"] = parse_bytes(ns.shm_size)
    if ns.memory_swap:
        host["MemorySwap"] = -1 if ns.memory_swap == "-1" else parse_bytes(ns.memory_swap)
    if ns.log_driver or ns.log_opt:
        opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in ns.log_opt)
        host["LogConfig"] = {"Type": ns.log_driver or "journald", "Config": opts}
    return host


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
        # As docker's CLI: a lone container path is an anonymous volume (Config.Volumes).
        "Binds": [v for v in ns.volume if ":" in v] or None,
        "VolumesFrom": ns.volumes_from or None,
        "Mounts": [parse_mount_flag(m) for m in ns.mount] or None,
        "Tmpfs": {t.split(":", 1)[0]: (t.split(":", 1)[1] if ":" in t else "")
                  for t in ns.tmpfs} or None,
        "ReadonlyRootfs": ns.read_only, "AutoRemove": ns.rm, "Init": ns.init or None,
        "NetworkMode": ns.network[0] if ns.network else "default",
        "PublishAllPorts": ns.publish_all or None,
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
    host.update(resource_fields(ns))
    body: dict[str, Any] = {
        "Image": ns.image, "Env": env, "Labels": labels, "Tty": ns.tty,
        "OpenStdin": ns.interactive, "StdinOnce": ns.interactive,
        "AttachStdin": ns.interactive, "AttachStdout": True, "AttachStderr": True,
        "HostConfig": host,
    }
    if ns.command:
        body["Cmd"] = ns.command
    anonymous: dict[str, dict[str, str]] = {v: {} for v in ns.volume if ":" not in v}
    if anonymous:
        body["Volumes"] = anonymous
    if ns.network_alias or ns.ip:
        net = ns.network[0] if ns.network else "bridge"
        body["NetworkingConfig"] = {"EndpointsConfig": {net: {
            "Aliases": ns.network_alias or None,
            "IPAMConfig": {"IPv4Address": ns.ip} if ns.ip else None}}}
    if ns.mac_address:
        body["MacAddress"] = ns.mac_address
    exposed: dict[str, dict[str, str]] = {key: {} for key in bindings}
    for spec in ns.expose:
        port, _, proto = spec.partition("/")
        for number in _port_range(port, spec):
            exposed[f"{number}/{proto or 'tcp'}"] = {}
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
