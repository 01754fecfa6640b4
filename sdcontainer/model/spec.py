"""What a container is asked to be: typed records shared by the daemon, the
monitor and the launcher.

`ContainerConfig` is what the user asked for, already merged with the image's
defaults; `LaunchSpec` is everything the launcher needs to build the sandbox,
with every path resolved, so the launcher makes no decisions of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass CLS from DATA, ignoring unknown keys (records written by newer versions)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


# docker's bind propagation modes (-v SRC:DST:rslave, BindOptions.Propagation); a bind
# without one is rprivate.
BIND_PROPAGATIONS = ("rprivate", "private", "rslave", "slave", "rshared", "shared")


@dataclass(frozen=True)
class MountSpec:
    """A volume: a bind mount of a host path, or a tmpfs."""

    type: str  # "bind" | "tmpfs"
    target: str
    source: str = ""
    readonly: bool = False
    options: str = ""  # tmpfs: size=64m,mode=1777; bind: propagation etc.
    # How the request gave it, so inspect shows it back as given: ORIGIN is "binds"
    # (HostConfig.Binds), "tmpfs" (HostConfig.Tmpfs) or "mounts"; MODE is the option
    # string of a Binds or Tmpfs entry.
    origin: str = ""
    mode: str = ""
    propagation: str = ""  # a bind's, as given: "" (rprivate) or one of BIND_PROPAGATIONS
    # type "volume": SOURCE is the volume's _data directory, NAME the volume's name;
    # ANONYMOUS volumes go with `rm -v`; NOCOPY skips copying the image's files up.
    name: str = ""
    anonymous: bool = False
    nocopy: bool = False
    # type "volume", VolumeOptions.Subpath: SOURCE is this directory inside the volume.
    subpath: str = ""

    @classmethod
    def load(cls, data: dict[str, Any]) -> MountSpec:
        """From the JSON form."""
        return from_dict(cls, data)


@dataclass(frozen=True)
class PortMapping:
    """A published port (HostConfig.PortBindings, -p): HOST_IP:HOST_PORT ->
    CONTAINER_PORT/PROTO; host_ip "" is every address, host_port 0 a free port, and
    COUNT > 1 a range of host ports starting at HOST_PORT."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"
    count: int = 1

    @classmethod
    def load(cls, data: Any) -> PortMapping:
        """From the JSON form (a PortMapping already is one)."""
        return data if isinstance(data, PortMapping) else from_dict(cls, data)


@dataclass
class Healthcheck:
    """docker's Config.Healthcheck, durations in nanoseconds.  In a create request a 0
    means "not given" (the image's value, else docker's default) and TEST ["NONE"]
    turns the image's check off; in a record every field is set."""

    test: list[str]
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0

    def to_docker(self) -> dict[str, Any]:
        """docker's JSON form."""
        return {"Test": list(self.test), "Interval": self.interval, "Timeout": self.timeout,
                "Retries": self.retries, "StartPeriod": self.start_period}

    @classmethod
    def from_docker(cls, data: dict[str, Any]) -> Healthcheck:
        """From docker's JSON form, already checked."""
        return cls(list(data.get("Test") or []), int(data.get("Interval") or 0),
                   int(data.get("Timeout") or 0), int(data.get("Retries") or 0),
                   int(data.get("StartPeriod") or 0))

    @classmethod
    def load(cls, data: Any) -> Healthcheck | None:
        """From a record: ours, or the docker-shaped dict earlier versions wrote ({}: none)."""
        if isinstance(data, Healthcheck) or data is None:
            return data
        if not data:
            return None
        return cls.from_docker(data) if "Test" in data else from_dict(cls, data)


@dataclass(frozen=True)
class Device:
    """A host device node given to the container (--device HOST[:CONTAINER][:PERMS]);
    TYPE ("c" or "b") and the numbers are the node's, filled in at create time."""

    host: str
    path: str
    perms: str = "rwm"
    type: str = ""
    major: int = 0
    minor: int = 0
    mode: int = 0

    @classmethod
    def load(cls, data: Any) -> Device:
        """From the JSON form (a Device already is one)."""
        return data if isinstance(data, Device) else from_dict(cls, data)


@dataclass(frozen=True)
class RestartPolicy:
    """docker's restart policy: no, on-failure (at most MAX_RETRIES restarts; 0 = no
    limit), always or unless-stopped.  Checked by engine/restart.py."""

    name: str = "no"
    max_retries: int = 0

    def to_docker(self) -> dict[str, Any]:
        """docker's HostConfig.RestartPolicy ("" for no, as dockerd shows an unset one)."""
        return {"Name": "" if self.name == "no" else self.name,
                "MaximumRetryCount": self.max_retries}

    @classmethod
    def load(cls, data: Any) -> RestartPolicy:
        """From the JSON form, or docker's (records written before it was typed)."""
        if isinstance(data, RestartPolicy):
            return data
        if not data:
            return cls()
        if "Name" in data or "MaximumRetryCount" in data:
            return cls(data.get("Name") or "no", int(data.get("MaximumRetryCount") or 0))
        return from_dict(cls, data)


@dataclass
class EndpointSpec:
    """docker's EndpointSettings for one network a container joins (NetworkingConfig at
    create, EndpointConfig at connect): kept in the record, applied at every start.
    NETWORK is the network's name, NETWORK_ID its id when known; LINKS are
    "target:alias" names on that network; IP a fixed IPv4 address; MAC a fixed MAC."""

    network: str
    network_id: str = ""
    aliases: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ip: str = ""
    mac: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)
    link_local_ips: list[str] = field(default_factory=list)
    ip6: str = ""  # a fixed IPv6 address (networks with an IPv6 subnet)

    @classmethod
    def load(cls, data: Any) -> EndpointSpec:
        """From the JSON form (an EndpointSpec already is one)."""
        return data if isinstance(data, EndpointSpec) else from_dict(cls, data)


@dataclass
class ContainerConfig:
    """A container's configuration: the engine's create input, and its record.

    As input (from the API, the D-Bus service, a build step), an unset field means
    "the image's value" or the engine's default: entrypoint and cmd None, working_dir,
    user, hostname, stop_signal and network_mode "".  The engine fills them in once at
    create time; the record it keeps has them all set.
    """

    image: str
    image_id: str = ""
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str = ""
    stop_timeout: int = 10
    memory: int = 0
    nano_cpus: int = 0
    pids_limit: int = 0
    init: bool = False
    read_only: bool = False
    auto_remove: bool = False
    mounts: list[MountSpec] = field(default_factory=list)
    network_mode: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    publish: list[PortMapping] = field(default_factory=list)
    publish_all: bool = False  # -P: every exposed port on a free host port, at each start
    links: list[str] = field(default_factory=list)  # "name[:alias]"
    aliases: list[str] = field(default_factory=list)
    # Per-network endpoint settings: the first network's (network_mode) if given, and
    # every further network the container joins at start (connected while stopped
    # or given at create); aliases, ip and mac above apply to the first network too.
    endpoints: list[EndpointSpec] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)  # "host:ip"
    mac: str = ""
    ip: str = ""
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    group_add: list[str] = field(default_factory=list)
    userns: str = ""  # "" (the host's) | "auto"
    userns_base: int = 0
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    healthcheck: Healthcheck | None = None
    health_on_failure: str = "none"  # none | restart | kill | stop (podman's)
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp", the image's included
    cpu_shares: int = 0
    cpuset_cpus: str = ""  # "0-2,4"
    memory_swap: int = 0  # 0: not given; -1: unlimited
    memory_swappiness: int | None = None
    shm_size: int = 0  # bytes of /dev/shm; 0: the default, 64 MiB
    ipc_mode: str = ""  # "" | private | shareable | host | container:NAME | ns:/PATH
    uts_mode: str = ""  # "" | private | host | container:NAME | ns:/PATH
    pid_mode: str = ""  # "" | private | host | container:NAME
    cgroupns_mode: str = ""  # "" (the host's) | host | private
    cgroup_parent: str = ""  # a systemd slice the scope goes in; "" its own slice
    isolation: str = ""
    runtime: str = ""
    volume_driver: str = ""
    device_cgroup_rules: list[str] = field(default_factory=list)
    log_driver: str = "journald"
    log_opts: dict[str, str] = field(default_factory=dict)
    # Kubernetes' CRI: an absolute path the supervisor also writes every output line to,
    # in the CRI log format (runtime/logsink.CriFile); "" none.
    cri_log_path: str = ""
    volumes_from: list[str] = field(default_factory=list)  # CONTAINER[:ro|:rw], as given

    @property
    def argv(self) -> list[str]:
        """The command line the workload runs."""
        return [*(self.entrypoint or []), *(self.cmd or [])]

    @classmethod
    def load(cls, data: dict[str, Any]) -> ContainerConfig:
        """From the JSON form."""
        config = from_dict(cls, data)
        config.mounts = [MountSpec.load(m) if isinstance(m, dict) else m for m in config.mounts]
        config.devices = [Device.load(d) for d in config.devices]
        config.publish = [PortMapping.load(p) for p in config.publish]
        config.endpoints = [EndpointSpec.load(e) for e in config.endpoints]
        config.healthcheck = Healthcheck.load(config.healthcheck)
        config.restart_policy = RestartPolicy.load(config.restart_policy)
        return config


@dataclass
class LaunchSpec:
    """Everything the monitor and the launcher need, with paths resolved."""

    id: str
    name: str
    scope: str
    argv: list[str]
    env: list[str]
    cwd: str
    user: str
    hostname: str
    tty: bool
    open_stdin: bool
    init: bool
    read_only: bool
    layers: list[str]  # unpacked image layers, lowest first
    upper: str
    work: str
    rootfs: str  # where the overlay is mounted, inside the container's own mount namespace
    mounts: list[MountSpec]
    net: str  # "host" | "new" (fresh, only lo) | path of a network namespace to join
    etc_files: dict[str, str]  # container path (/etc/hosts ...) -> host file bound over it
    control_socket: str
    exit_file: str
    journal_fields: dict[str, str]
    caps: list[str] = field(default_factory=list)
    no_new_privs: bool = True
    seccomp: str = "default"  # "default" | "unconfined" | a JSON profile
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    privileged: bool = False
    group_add: list[str] = field(default_factory=list)
    apparmor: str = ""
    process_label: str = ""
    userns_base: int = 0  # --userns=auto: container root is this host uid/gid
    userns_size: int = 0
    ipc: str = "new"  # "new" | "host" | path of an ipc namespace to join
    uts: str = "new"  # "new" | "host" | path of a uts namespace to join (no sethostname)
    pid: str = "new"  # "new" | "host" | path of a pid namespace to join
    cgroupns: str = "host"  # "host" | "new"
    cpus: list[int] = field(default_factory=list)  # CPUs the workload may run on; [] all
    shm_size: int = 0  # bytes; 0: 64 MiB
    # Where output goes besides attached clients (runtime/logsink.py): LOG_DRIVER
    # "journald" | "none" | "json-file" (JSON_LOG: its file, rotated at LOG_MAX_SIZE
    # bytes, 0 never, keeping LOG_MAX_FILE files); CRI_LOG_PATH: also a CRI log file.
    log_driver: str = "journald"
    json_log: str = ""
    log_max_size: int = 0
    log_max_file: int = 1
    cri_log_path: str = ""

    @classmethod
    def load(cls, data: dict[str, Any]) -> LaunchSpec:
        """From the JSON form."""
        spec = from_dict(cls, data)
        spec.mounts = [MountSpec.load(m) if isinstance(m, dict) else m for m in spec.mounts]
        spec.devices = [Device.load(d) for d in spec.devices]
        return spec
