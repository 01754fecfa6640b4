"""The one table of `run`/`create` flags.

The CLI's parser (cli/options.py) adds its arguments from it, the man pages show them
through that parser, and the boot-time generator (systemd/generator.py) takes the keys
of a .container file from it and writes them back as these flags.  A new flag is one
row here (and its translation into the create body in cli/options.py).

Stdlib only, no imports of ours: the client and the generator both load it.
"""

from __future__ import annotations

from dataclasses import dataclass

# kind -> the TOML types a .container file may give for it.
TOML_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "bool": (bool,), "list": (list,), "map": (list, dict),
    "size": (str, int), "number": (str, int, float),
}


@dataclass(frozen=True)
class Flag:
    """One run/create flag.

    NAMES are its spellings, as the parser lists them (the first long one names the
    parsed value); KIND says what it takes: "bool" (a switch), "str", "int", "size"
    ("64m" or bytes), "number", "list" (repeatable) or "map" (repeatable KEY=VALUE;
    a table in a .container file).  KEY is its .container key ("" if it has none),
    written back as SPELLING (NAMES[0] unless given).  PARSER is False for the flags
    cli/systemdcmds.py adds itself (restart and health).
    """

    names: tuple[str, ...]
    kind: str
    help: str
    key: str = ""
    spelling: str = ""
    choices: tuple[str, ...] = ()
    parser: bool = True
    toml: tuple[type, ...] = ()

    @property
    def unit_flag(self) -> str:
        """How the generator writes it on an ExecStart= line."""
        return self.spelling or self.names[0]

    @property
    def toml_types(self) -> tuple[type, ...]:
        """What a .container file may give for KEY."""
        return self.toml or TOML_TYPES[self.kind]


def _f(names: str, kind: str, help: str, key: str = "", **more: object) -> Flag:
    return Flag(tuple(names.split()), kind, help, key, **more)  # type: ignore[arg-type]


FLAGS: tuple[Flag, ...] = (
    _f("--name", "str", "assign a name to the container"),
    # The .container keys, in the order the generator writes them.
    _f("--entrypoint", "str", "overwrite the default ENTRYPOINT of the image", "entrypoint"),
    _f("-e --env", "map", "set environment variables", "env"),
    _f("-p --publish", "list", "publish a container's port(s) to the host "
       "([ip:][hostport:]port[/proto])", "publish"),
    _f("-P --publish-all", "bool", "publish all exposed ports to random ports", "publish-all"),
    _f("-v --volume", "list", "bind mount a host path or a named volume "
       "(HOST-PATH|NAME:CTR[:ro|rw], a host path also [r]private|[r]slave|[r]shared), or "
       "make an anonymous volume (CTR)", "volume"),
    _f("--network --net", "list", "connect a container to a network (NAME, bridge, host, "
       "none, container:NAME or ns:/PATH)", "network",
       toml=(str,)),
    _f("-m --memory", "size", "memory limit", "memory"),
    _f("--cpus", "number", "number of CPUs", "cpus"),
    _f("--pids-limit", "int", "tune container pids limit (-1 for unlimited)", "pids-limit"),
    _f("--stop-signal", "str", "signal to stop the container", "stop-signal"),
    _f("--stop-timeout", "int", "timeout (in seconds) to stop a container", "stop-timeout"),
    _f("-u --user", "str", "username or UID (format: <name|uid>[:<group|gid>])", "user",
       spelling="--user"),
    _f("-w --workdir", "str", "working directory inside the container", "workdir",
       spelling="--workdir"),
    _f("-h --hostname", "str", "container host name", "hostname", spelling="--hostname"),
    _f("--init", "bool", "run an init inside the container that forwards signals and reaps "
       "processes", "init"),
    _f("--read-only", "bool", "mount the container's root filesystem read-only", "read-only"),
    _f("-l --label", "map", "set meta data on a container", "label", spelling="--label"),
    _f("--tmpfs", "list", "mount a tmpfs directory (PATH[:OPTS])", "tmpfs"),
    _f("--add-host", "list", "add a custom host-to-IP mapping (host:ip)", "add-host"),
    _f("--dns", "list", "set custom DNS servers", "dns"),
    _f("--dns-search", "list", "set custom DNS search domains", "dns-search"),
    _f("--dns-option --dns-opt", "list", "set DNS options", "dns-option"),
    _f("--expose", "list", "expose a port or a range of ports (PORT[/PROTO])", "expose"),
    _f("-c --cpu-shares", "int", "CPU shares (relative weight)", "cpu-shares",
       spelling="--cpu-shares"),
    _f("--cpuset-cpus", "str", "CPUs in which to allow execution (0-3, 0,1)", "cpuset-cpus"),
    _f("--shm-size", "size", "size of /dev/shm (default 64m)", "shm-size"),
    _f("--ipc", "str", "IPC mode: private, shareable, host, container:NAME or ns:/PATH",
       "ipc"),
    _f("--uts", "str", "UTS namespace to use: private, host, container:NAME or ns:/PATH",
       "uts"),
    _f("--cgroupns", "str", "cgroup namespace to use: host or private", "cgroupns",
       choices=("host", "private")),
    _f("--cgroup-parent", "str", "systemd slice to put the container's scope in "
       "(e.g. pod1.slice)", "cgroup-parent"),
    _f("--cap-add", "list", "add Linux capabilities", "cap-add"),
    _f("--cap-drop", "list", "drop Linux capabilities", "cap-drop"),
    _f("--security-opt", "list", "security options", "security-opt"),
    _f("--device", "list", "add a host device to the container (HOST[:CONTAINER][:PERMS])",
       "device"),
    _f("--log-driver", "str", "logging driver: journald (the default), json-file, local or none",
       "log-driver"),
    # Flags with no .container key.
    _f("--env-file", "list", "read in a file of environment variables"),
    _f("-i --interactive", "bool", "keep STDIN open even if not attached"),
    _f("-t --tty", "bool", "allocate a pseudo-TTY"),
    _f("--mount", "list", "attach a mount (type=bind|volume|tmpfs,source=,target=,...)"),
    _f("--volumes-from", "list", "mount the volumes of another container (NAME[:ro|rw])"),
    _f("--memory-swap", "str", "swap limit: only -1 (unlimited, the default) is supported"),
    _f("--memory-swappiness", "int", "tune container memory swappiness (0 to 100)"),
    _f("--pid", "str", "PID namespace to use: private, host or container:NAME"),
    _f("--rm", "bool", "automatically remove the container when it exits"),
    _f("--link", "list", "add link to another container (NAME[:ALIAS])"),
    _f("--network-alias --net-alias", "list", "add network-scoped alias for the container"),
    _f("--ip", "str", "IPv4 address (e.g., 172.30.100.104)"),
    _f("--mac-address", "str", "container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    _f("--platform", "str", "set platform if server is multi-platform capable"),
    _f("--privileged", "bool", "give extended privileges to this container"),
    _f("--group-add", "list", "add additional groups to join"),
    _f("--userns", "str", "user namespace: auto (a subordinate id range from /etc/subuid) "
       "or host"),
    _f("--log-opt", "list", "log driver options (KEY=VALUE)"),
    _f("--isolation", "str", "container isolation technology (default)"),
    _f("--runtime", "str", "runtime to use for this container (sdcontainer)"),
    _f("--volume-driver", "str", "volume driver for the container (local)"),
    # Added by cli/systemdcmds.py; here for the generator and the man pages' sake.
    _f("--health-cmd", "str", "command to run to check health", "health-cmd", parser=False),
    _f("--health-interval", "str", "time between running the check", "health-interval",
       parser=False),
    _f("--health-timeout", "str", "maximum time to allow one check to run", "health-timeout",
       parser=False),
    _f("--health-retries", "int", "consecutive failures needed to report unhealthy",
       "health-retries", parser=False),
    _f("--health-start-period", "str", "start period before failures count",
       "health-start-period", parser=False),
    _f("--health-on-failure", "str", "action when the container turns unhealthy",
       "health-on-failure", parser=False),
)


def by_key() -> dict[str, Flag]:
    """The flags a .container file may set, by key."""
    return {f.key: f for f in FLAGS if f.key}
