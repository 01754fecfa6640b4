"""sdcontainer-generator: containers declared in files become systemd services.

systemd runs generators early at boot and on every `systemctl daemon-reload`,
passing three output directories (normal, early, late).  We read
/etc/sdcontainer/containers/*.container and, for vendors,
/usr/share/sdcontainer/containers/*.container (a file in /etc overrides one of
the same name), each a TOML table whose keys mirror `sdcontainer run` flags:

    image = "busybox"            # required
    name = "web"                 # default: the file's stem
    command = ["httpd", "-f"]    # or a string, split as a shell would
    publish = ["8080:80"]
    restart = "on-failure"       # the service's Restart=
    notify = true                # the workload sends READY=1 itself
    [service]
    wanted-by = ["multi-user.target"]

and write sdcontainer-NAME.service into the normal directory (the container's
own scope is sdcontainer-NAME.scope: another unit type, no clash).  The
service runs the container in the foreground, `sdcontainer run --rm
--sdnotify=...`; its main process is that command, which relays signals
(`systemctl kill`) to the container and exits with it.  What Quadlet learned
is built in: Type=notify with NotifyAccess=all, KillMode=mixed, Delegate=yes,
SyslogIdentifier=%N; a stop is `sdcontainer stop` (the container's own signal
and timeout) and removes the container (podman #17516: ExecStopPost removes
it even when the command was killed, so nothing is left to block the next
start); and nothing can leave the unit stuck in stopping after `systemctl
kill` (podman #26640): the main process ends when the container does, and
every stop command has a bounded wait.  `[Install]`-like wanted-by/required-by
become .wants/.requires symlinks here, since generated units cannot be
enabled.

An invalid file produces no unit and one line in the journal.  Stdlib only:
this runs at boot, before most of the system.

Nothing from a file reaches a unit unchecked (issue 13: `timeout-start-sec =
"5\nExecStartPre=..."` once became a directive).  A value that lands in a
directive of its own (image, source path, timeout-start-sec, unit names) is
validated and may hold no control character; every argument of a command line
is quoted by quote() as systemd.syntax(7) wants, so it reaches the container
byte for byte, `%`, `$`, quotes, backslashes and newlines included.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument  # stdlib only itself, as this module must stay
from ..util import runflags

SEARCH_PATH = (Path("/etc/sdcontainer/containers"), Path("/usr/share/sdcontainer/containers"))
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
# Control characters end or bend a unit-file line (\n, \r, a trailing \) or an argv.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# systemd.time(7) time spans: "90", "5min 30s", "1.5h", "infinity".
TIMESPAN_RE = re.compile(
    r"infinity|(?:[0-9]+(?:\.[0-9]+)? ?(?:usec|us|msec|ms|seconds|second|sec|s|minutes|minute|"
    r"min|m|hours|hour|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)? ?)+")
DIGITS_RE = re.compile(r"[0-9]+")  # str.isdigit() also takes "²" and "٣"
UNIT_RE = re.compile(r"[a-zA-Z0-9:_.@\\-]+\.(service|target|socket|mount|path|timer|slice|"
                     r"device|scope|swap|automount)")
RESTART = {"no": "no", "on-failure": "on-failure", "always": "always",
           "unless-stopped": "always"}

# key -> (TOML types, run flag), from the one flag table; list-typed keys repeat the flag.
FLAGS: dict[str, tuple[type | tuple[type, ...], str]] = {
    key: (flag.toml_types, flag.unit_flag) for key, flag in runflags.by_key().items()}
OTHER_KEYS: dict[str, type | tuple[type, ...]] = {
    "image": str, "name": str, "command": (list, str), "restart": str, "notify": bool,
    "service": dict}
SERVICE_KEYS = {"wanted-by", "required-by", "after", "before", "requires", "wants",
                "timeout-start-sec"}


class Invalid(InvalidArgument):
    """A .container file (or a container) we cannot turn into a unit."""


_SIGNAL_NAMES = frozenset(n[3:] for n in signal.Signals.__members__ if n.startswith("SIG"))


@dataclass
class Container:
    """A parsed .container file (or an existing container, for `generate systemd`)."""

    name: str
    image: str
    command: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # run flags before the image
    restart: str = "no"
    notify: bool = False
    stop_timeout: int = 10
    stop_signal: str = "SIGTERM"
    service: dict[str, list[str]] = field(default_factory=dict)
    timeout_start: str = ""
    source: str = ""


def plain(value: str, what: str) -> str:
    """VALUE, for a unit-file line of its own: Invalid if it holds a control character."""
    if CONTROL_RE.search(value):
        raise Invalid(f"{what} {value!r} contains a control character")
    return value


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Invalid(f"{what} must be a string or a list of strings")


def parse(data: dict[str, Any], stem: str, source: str = "") -> Container:
    """A .container file's table as a Container; Invalid names the first problem."""
    for key, value in data.items():
        plain(key, "key")
        expected = FLAGS[key][0] if key in FLAGS else OTHER_KEYS.get(key)
        if expected is None:
            raise Invalid(f"unknown key {key!r}")
        types = expected if isinstance(expected, tuple) else (expected,)
        # A bool is an int to Python: only a switch takes true or false.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise Invalid(f"key {key!r} has the wrong type ({type(value).__name__})")
    image = data.get("image")
    if not image:
        raise Invalid("no image given (image = \"...\")")
    plain(image, "image")
    if image.startswith("-") or any(ch.isspace() for ch in image):
        raise Invalid(f"invalid image {image!r}")  # no reference starts with - or has blanks
    name = data.get("name", stem)
    if not NAME_RE.fullmatch(name) or len(name) > 100:
        raise Invalid(f"invalid container name {name!r}: [a-zA-Z0-9][a-zA-Z0-9_.-]* "
                      "(at most 100 characters)")
    command = data.get("command", [])
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as e:
            raise Invalid(f"command: {e}") from None
    elif not all(isinstance(c, str) for c in command):
        raise Invalid("command must be a string or a list of strings")
    restart = data.get("restart", "no")
    policy, _, retries = restart.partition(":")
    if policy not in RESTART or (retries and (policy != "on-failure"
                                              or not DIGITS_RE.fullmatch(retries))):
        raise Invalid(f"invalid restart {restart!r}: no, on-failure[:N], always or "
                      "unless-stopped")
    c = Container(name=name, image=image, command=command, restart=restart,
                  notify=bool(data.get("notify", False)), source=source)
    for key, (_, flag) in FLAGS.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool):
            if value:
                c.flags.append(flag)
        elif isinstance(value, dict):
            for k, v in value.items():
                c.flags += [flag, f"{k}={v}"]
        elif isinstance(value, list):
            for v in value:
                # A bool is an int to Python: `publish = [true]` must not become "-p True".
                if isinstance(v, bool) or not isinstance(v, str | int):
                    raise Invalid(f"{key} entries must be strings")
                c.flags += [flag, str(v)]
        else:
            c.flags += [flag, str(value)]
    if "stop-timeout" in data:
        c.stop_timeout = int(data["stop-timeout"])
    if "stop-signal" in data:
        c.stop_signal = str(data["stop-signal"])
        sig = c.stop_signal.upper()
        if not DIGITS_RE.fullmatch(sig) and sig.removeprefix("SIG") not in _SIGNAL_NAMES:
            raise Invalid(f"invalid stop-signal {c.stop_signal!r}")
    for key, value in data.get("service", {}).items():
        if key not in SERVICE_KEYS:
            raise Invalid(f"unknown key {key!r} in [service]")
        if key == "timeout-start-sec":
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise Invalid("timeout-start-sec must be a string or a number")
            if not TIMESPAN_RE.fullmatch(str(value)):
                raise Invalid(f"invalid timeout-start-sec {value!r}: a time span such as "
                              "\"90\", \"5min 30s\" or \"infinity\"")
            c.timeout_start = str(value)
            continue
        units = _strings(value, f"[service] {key}")
        for u in units:
            if not UNIT_RE.fullmatch(u):
                raise Invalid(f"invalid unit name {u!r} in [service] {key}")
        c.service[key] = units
    return c


def _escape_char(ch: str) -> str:
    if ch == "\0":
        raise Invalid("an argument contains a NUL character")  # no argv can hold one
    if ch == "\\" or ch == '"':
        return "\\" + ch
    if ch == "%":
        return "%%"  # a specifier otherwise (%h, %n, ...)
    if ch == "$":
        return "$$"  # an environment variable otherwise ($HOME, ${X})
    if CONTROL_RE.match(ch):
        return f"\\x{ord(ch):02x}"  # C escapes are unescaped in ExecStart= words
    return ch


def quote(arg: str) -> str:
    """ARG as one word of a systemd command line (systemd.syntax(7), systemd.service(5)
    "Command lines"): backslashes and quotes escaped, %% for %, $$ for $, control
    characters as \\xNN, inside double quotes unless ARG is plain."""
    escaped = "".join(_escape_char(ch) for ch in arg)
    if escaped and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return f'"{escaped}"'


def specifiers(text: str) -> str:
    """TEXT with % doubled, for a directive that expands specifiers (Description=)."""
    return text.replace("%", "%%")


def command_line(argv: list[str]) -> str:
    """ARGV for ExecStart= and friends."""
    return " ".join(quote(a) for a in argv)


def signal_number(name: str) -> int:
    """A signal name or number as its number."""
    text = name.upper()
    if DIGITS_RE.fullmatch(text):
        return int(text)
    return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])


def cli_path() -> str:
    """The sdcontainer command beside our interpreter (a venv or /usr/bin)."""
    candidate = Path(sys.executable).parent / "sdcontainer"
    return str(candidate) if candidate.exists() else "/usr/bin/sdcontainer"


def render(c: Container, cli: str | None = None) -> str:
    """The service unit for C."""
    cli = cli or cli_path()
    policy = c.restart.partition(":")[0]
    retries = c.restart.partition(":")[2]
    sdnotify = "container" if c.notify else "conmon"
    run = [cli, "run", "--rm", "--name", c.name, f"--sdnotify={sdnotify}", *c.flags,
           c.image, *c.command]
    stop_timeout = max(c.stop_timeout, 0)
    svc = c.service
    # Values on lines of their own: checked here as well as in parse(), since
    # `generate systemd` renders what the daemon reports.
    for value, what in ((c.name, "name"), (c.image, "image"), (c.source, "source path"),
                        (c.timeout_start, "timeout-start-sec"),
                        *((u, f"[service] {k}") for k, us in svc.items() for u in us)):
        plain(value, what)
    lines = ["# Generated by sdcontainer-generator" + (f" from {c.source}" if c.source else ""),
             "[Unit]", f"Description=sdcontainer {specifiers(c.name)} ({specifiers(c.image)})",
             "Documentation=man:sdcontainer(1)"]
    if c.source:
        lines.append(f"SourcePath={specifiers(c.source)}")
    lines += [
        "Requires=sdcontainerd.service",
        "After=sdcontainerd.service network-online.target",
        "Wants=network-online.target",
    ]
    for key, directive in (("after", "After"), ("before", "Before"), ("requires", "Requires"),
                           ("wants", "Wants")):
        if svc.get(key):
            lines.append(f"{directive}={' '.join(svc[key])}")
    if policy == "on-failure" and retries:
        lines += [f"StartLimitBurst={int(retries) + 1}", "StartLimitIntervalSec=infinity"]
    lines += [
        "", "[Service]",
        "Type=notify", "NotifyAccess=all", "KillMode=mixed", "Delegate=yes",
        "SyslogIdentifier=%N", "Environment=SDCONTAINER_SYSTEMD_UNIT=%n",
        # A container left by a crash or a SIGKILLed command would block the name.
        f"ExecStartPre=-{command_line([cli, 'rm', '-f', c.name])}",
        f"ExecStart={command_line(run)}",
        f"ExecStop={command_line([cli, 'stop', '-t', str(stop_timeout), c.name])}",
        f"ExecStopPost=-{command_line([cli, 'rm', '-f', c.name])}",
        # The container's end by its own stop signal is a clean stop, not a failure.
        f"SuccessExitStatus={128 + signal_number(c.stop_signal)}",
        f"TimeoutStopSec={stop_timeout + 30}",
        f"Restart={RESTART[policy]}",
    ]
    if c.timeout_start:
        lines.append(f"TimeoutStartSec={c.timeout_start}")
    if svc.get("wanted-by") or svc.get("required-by"):
        lines += ["", "[Install]"]
        if svc.get("wanted-by"):
            lines.append(f"WantedBy={' '.join(svc['wanted-by'])}")
        if svc.get("required-by"):
            lines.append(f"RequiredBy={' '.join(svc['required-by'])}")
    return "\n".join(lines) + "\n"


def unit_name(c: Container) -> str:
    """The service's name."""
    return f"sdcontainer-{c.name}.service"


def from_inspect(info: dict[str, Any]) -> Container:
    """An existing container (its inspect JSON) as the Container that would recreate it."""
    cfg, hc = info.get("Config") or {}, info.get("HostConfig") or {}
    name = str(info.get("Name", "")).lstrip("/")
    c = Container(name=name, image=str(cfg.get("Image", "")), command=list(cfg.get("Cmd") or []))
    flags: list[str] = []
    if cfg.get("Entrypoint"):
        flags += ["--entrypoint", cfg["Entrypoint"][0]]
        c.command = [*cfg["Entrypoint"][1:], *c.command]
    for e in cfg.get("Env") or []:
        key = e.split("=", 1)[0]
        if key in ("PATH", "HOSTNAME", "TERM"):
            continue
        if e == "NOTIFY_SOCKET=/run/notify/notify.sock":
            c.notify = True
            continue
        flags += ["-e", e]
    for b in hc.get("Binds") or []:
        if b.endswith(":/run/notify") or ":/run/notify:" in b:
            continue
        flags += ["-v", b]
    for port, bindings in (hc.get("PortBindings") or {}).items():
        for bnd in bindings or []:
            host = ":".join(x for x in (bnd.get("HostIp"), bnd.get("HostPort")) if x)
            flags += ["-p", f"{host}:{port}" if host else port]
    mode = hc.get("NetworkMode") or ""
    if mode and mode not in ("default", "bridge"):
        flags += ["--network", mode]
    if hc.get("Memory"):
        flags += ["-m", str(hc["Memory"])]
    if hc.get("NanoCpus"):
        flags += ["--cpus", f"{hc['NanoCpus'] / 1e9:g}"]
    if hc.get("PidsLimit"):
        flags += ["--pids-limit", str(hc["PidsLimit"])]
    if hc.get("CgroupParent"):  # the pod slice it goes in: not ours, kept as given
        flags += ["--cgroup-parent", hc["CgroupParent"]]
    if cfg.get("StopSignal") and cfg["StopSignal"] != "SIGTERM":
        flags += ["--stop-signal", cfg["StopSignal"]]
        c.stop_signal = cfg["StopSignal"]
    if cfg.get("StopTimeout") is not None:
        c.stop_timeout = int(cfg["StopTimeout"])
        flags += ["--stop-timeout", str(c.stop_timeout)]
    for key, flag in (("User", "--user"), ("WorkingDir", "--workdir")):
        if cfg.get(key) and not (key == "WorkingDir" and cfg[key] == "/"):
            flags += [flag, cfg[key]]
    if hc.get("Init"):
        flags.append("--init")
    if hc.get("ReadonlyRootfs"):
        flags.append("--read-only")
    for k, v in (cfg.get("Labels") or {}).items():
        flags += ["--label", f"{k}={v}"]
    flags += _inspect_flags(info)
    policy = hc.get("RestartPolicy") or {}
    if policy.get("Name") not in (None, "", "no"):
        c.restart = policy["Name"]
        if policy.get("MaximumRetryCount"):
            c.restart += f":{policy['MaximumRetryCount']}"
    c.flags = flags
    c.service = {"wanted-by": ["multi-user.target"]}
    return c


def _duration(ns: int) -> str:
    """Nanoseconds as a Go duration the CLI reads back exactly (30s, 1500ms, 7ns)."""
    for unit, scale in (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9),
                        ("ms", 10**6), ("us", 10**3)):
        if ns % scale == 0:
            return f"{ns // scale}{unit}"
    return f"{ns}ns"


def _healthcheck_flags(hc: dict[str, Any]) -> list[str]:
    """Config.Healthcheck as --health-* flags (a CMD test becomes the shell's command)."""
    test = list(hc.get("Test") or [])
    if test[:1] == ["NONE"]:
        return ["--no-healthcheck"]
    flags: list[str] = []
    if test[:1] == ["CMD-SHELL"] and len(test) == 2:
        flags += ["--health-cmd", test[1]]
    elif test[:1] == ["CMD"]:
        flags += ["--health-cmd", shlex.join(test[1:])]
    for key, flag in (("Interval", "--health-interval"), ("Timeout", "--health-timeout"),
                      ("StartPeriod", "--health-start-period")):
        if hc.get(key):
            flags += [flag, _duration(int(hc[key]))]
    if hc.get("Retries"):
        flags += ["--health-retries", str(hc["Retries"])]
    return flags


def _inspect_flags(info: dict[str, Any]) -> list[str]:
    """The run flags, besides those from_inspect writes itself, that recreate what INFO
    (a container's inspect JSON) shows: its name files, capabilities and security,
    resources, namespaces, logging, mounts and networks."""
    cfg, hc = info.get("Config") or {}, info.get("HostConfig") or {}
    flags: list[str] = []
    uts = hc.get("UTSMode") or ""
    # The default host name is the short id (or the host's, the donor's): not a flag.
    if cfg.get("Hostname") and cfg["Hostname"] != str(info.get("Id", ""))[:12] and not uts:
        flags += ["--hostname", cfg["Hostname"]]
    for target, mode in (hc.get("Tmpfs") or {}).items():
        flags += ["--tmpfs", f"{target}:{mode}" if mode else target]
    for flag, key in (("--add-host", "ExtraHosts"), ("--dns", "Dns"),
                      ("--dns-search", "DnsSearch"), ("--dns-option", "DnsOptions"),
                      ("--cap-add", "CapAdd"), ("--cap-drop", "CapDrop"),
                      ("--security-opt", "SecurityOpt"), ("--group-add", "GroupAdd"),
                      ("--volumes-from", "VolumesFrom")):
        for value in hc.get(key) or []:
            flags += [flag, str(value)]
    if cfg.get("Healthcheck"):
        flags += _healthcheck_flags(cfg["Healthcheck"])
    for switch, on in (("--privileged", hc.get("Privileged")), ("-P", hc.get("PublishAllPorts")),
                       ("-t", cfg.get("Tty")), ("-i", cfg.get("OpenStdin"))):
        if on:
            flags.append(switch)
    for d in hc.get("Devices") or []:
        flags += ["--device", f"{d['PathOnHost']}:{d['PathInContainer']}:"
                  f"{d.get('CgroupPermissions') or 'rwm'}"]
    for port in cfg.get("ExposedPorts") or {}:
        flags += ["--expose", port]
    for flag, key, default in (("--cpu-shares", "CpuShares", 0),
                               ("--cpuset-cpus", "CpusetCpus", ""),
                               ("--shm-size", "ShmSize", 64 * 1024 * 1024),
                               ("--memory-swap", "MemorySwap", 0),
                               ("--memory-swappiness", "MemorySwappiness", None),
                               ("--ipc", "IpcMode", "private"), ("--uts", "UTSMode", ""),
                               ("--pid", "PidMode", ""), ("--cgroupns", "CgroupnsMode", "host"),
                               ("--userns", "UsernsMode", "")):
        if hc.get(key) not in (default, None, ""):
            flags += [flag, str(hc[key])]
    log = hc.get("LogConfig") or {}
    if log.get("Type") not in (None, "", "journald"):
        flags += ["--log-driver", log["Type"]]
    for k, v in (log.get("Config") or {}).items():
        flags += ["--log-opt", f"{k}={v}"]
    for link in hc.get("Links") or []:  # "/target:/us/alias"
        target, _, alias = link.partition(":")
        flags += ["--link", f"{target.lstrip('/')}:{alias.rsplit('/', 1)[-1]}"]
    for m in hc.get("Mounts") or []:
        spec = [f"type={m.get('Type', 'volume')}", f"target={m['Target']}"]
        if m.get("Source"):
            spec.append(f"source={m['Source']}")
        if m.get("ReadOnly"):
            spec.append("readonly")
        if (m.get("BindOptions") or {}).get("Propagation"):
            spec.append(f"bind-propagation={m['BindOptions']['Propagation']}")
        flags += ["--mount", ",".join(spec)]
    for endpoint in ((info.get("NetworkSettings") or {}).get("Networks") or {}).values():
        for alias in endpoint.get("Aliases") or []:
            flags += ["--network-alias", alias]
        ip = (endpoint.get("IPAMConfig") or {}).get("IPv4Address")
        if ip:
            flags += ["--ip", ip]
        break  # one network at create time, as run takes it
    return flags


# -- running as a generator ----------------------------------------------------

def log(message: str) -> None:
    """One line to the journal (generators have no journal stream of their own).

    systemd 252 runs generators with PID 1's stderr, which is the console, not
    the journal; systemd's own generators log to /dev/kmsg.  We use journald's
    native socket when it is up (daemon-reload), else the kmsg as systemd's
    generators do at boot (not inside a container: the kmsg is the host's),
    and always stderr.
    """
    print(f"sdcontainer-generator: {message}", file=sys.stderr)
    fields = (b"PRIORITY=3\nSYSLOG_IDENTIFIER=sdcontainer-generator\nMESSAGE="
              + message.encode(errors="replace").replace(b"\n", b" ") + b"\n")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(fields, "/run/systemd/journal/socket")
        return
    except OSError:
        pass
    if os.environ.get("container"):  # noqa: SIM112 - systemd's name for it
        return
    try:
        with open("/dev/kmsg", "w") as k:
            k.write(f"<3>sdcontainer-generator: {message}\n")
    except OSError:
        pass


def sources(search: tuple[Path, ...] = SEARCH_PATH) -> list[Path]:
    """The .container files, a name in an earlier directory hiding later ones."""
    seen: dict[str, Path] = {}
    for d in search:
        try:
            entries = sorted(d.glob("*.container"))
        except OSError:
            continue
        for f in entries:
            seen.setdefault(f.name, f)
    return [seen[k] for k in sorted(seen)]


def generate(out: Path, search: tuple[Path, ...] = SEARCH_PATH) -> int:
    """Write a unit into OUT for each valid file; the number of invalid files."""
    bad = 0
    names: dict[str, Path] = {}
    for f in sources(search):
        try:
            with open(f, "rb") as fh:
                data = tomllib.load(fh)
            c = parse(data, f.stem, str(f))
            if c.name in names:
                raise Invalid(f"container name {c.name!r} is also declared in {names[c.name]}")
            text = render(c)
        except (Invalid, tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
            log(f"{f}: {e}; no unit generated")
            bad += 1
            continue
        names[c.name] = f
        unit = unit_name(c)
        (out / unit).write_text(text, encoding="utf-8")
        for key, suffix in (("wanted-by", "wants"), ("required-by", "requires")):
            for target in c.service.get(key, []):
                d = out / f"{target}.{suffix}"
                d.mkdir(exist_ok=True)
                link = d / unit
                if not link.is_symlink():
                    link.symlink_to(f"../{unit}")
    return bad


def main(argv: list[str] | None = None) -> int:
    """Entry point: `sdcontainer-generator NORMAL_DIR [EARLY_DIR LATE_DIR]`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 3):
        print("usage: sdcontainer-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 1
    generate(Path(args[0]))
    return 0  # a bad file must not fail the whole daemon-reload


if __name__ == "__main__":
    sys.exit(main())
