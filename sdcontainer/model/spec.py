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


@dataclass(frozen=True)
class MountSpec:
    """A volume: a bind mount of a host path, or a tmpfs."""

    type: str  # "bind" | "tmpfs"
    target: str
    source: str = ""
    readonly: bool = False
    options: str = ""  # tmpfs: size=64m,mode=1777; bind: propagation etc.

    @classmethod
    def load(cls, data: dict[str, Any]) -> MountSpec:
        """From the JSON form."""
        return from_dict(cls, data)


@dataclass
class ContainerConfig:
    """A container's configuration, fixed at create time."""

    image: str
    image_id: str
    entrypoint: list[str]
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    memory: int = 0
    nano_cpus: int = 0
    pids_limit: int = 0
    init: bool = False
    read_only: bool = False
    auto_remove: bool = False
    mounts: list[MountSpec] = field(default_factory=list)
    network_mode: str = "bridge"
    labels: dict[str, str] = field(default_factory=dict)
    publish: list[dict[str, Any]] = field(default_factory=list)  # network.PortMapping fields
    links: list[str] = field(default_factory=list)  # "name[:alias]"
    aliases: list[str] = field(default_factory=list)
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
    devices: list[dict[str, Any]] = field(default_factory=list)  # see security_opts.Device
    group_add: list[str] = field(default_factory=list)
    userns: str = ""  # "" (the host's) | "auto"
    userns_base: int = 0
    restart_policy: dict[str, Any] = field(default_factory=dict)  # {Name, MaximumRetryCount}
    healthcheck: dict[str, Any] = field(default_factory=dict)  # docker's Config.Healthcheck
    health_on_failure: str = "none"  # none | restart | kill | stop (podman's)

    @property
    def argv(self) -> list[str]:
        """The command line the workload runs."""
        return [*self.entrypoint, *self.cmd]

    @classmethod
    def load(cls, data: dict[str, Any]) -> ContainerConfig:
        """From the JSON form."""
        config = from_dict(cls, data)
        config.mounts = [MountSpec.load(m) if isinstance(m, dict) else m for m in config.mounts]
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
    devices: list[dict[str, Any]] = field(default_factory=list)
    privileged: bool = False
    group_add: list[str] = field(default_factory=list)
    apparmor: str = ""
    process_label: str = ""
    userns_base: int = 0  # --userns=auto: container root is this host uid/gid
    userns_size: int = 0

    @classmethod
    def load(cls, data: dict[str, Any]) -> LaunchSpec:
        """From the JSON form."""
        spec = from_dict(cls, data)
        spec.mounts = [MountSpec.load(m) if isinstance(m, dict) else m for m in spec.mounts]
        return spec
