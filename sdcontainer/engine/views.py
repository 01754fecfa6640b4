"""The docker-shaped views of a container that every front end renders.

`docker ps` rows and `docker inspect` documents: REST serves them as they are, D-Bus
serves the same documents, so an action through either shows the same state.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from ..systemd import units
from ..util import humanize
from ..util.clock import unix_time
from .execs import ExecSession
from .records import Container


def _port_key(p: dict[str, Any]) -> str:
    return f"{p['container_port']}/{p.get('proto', 'tcp')}"


def ports_json(c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: every published port with its host binding."""
    ports: dict[str, Any] = {}
    for p in c.network.get("ports", []) if c.running else []:
        ports.setdefault(_port_key(p), []).append(
            {"HostIp": p.get("host_ip") or "0.0.0.0", "HostPort": str(p["host_port"])})
    return ports


def ports_list(c: Container) -> list[dict[str, Any]]:
    """The Ports array of GET /containers/json."""
    return [{"IP": p.get("host_ip") or "0.0.0.0", "PrivatePort": p["container_port"],
             "PublicPort": p["host_port"], "Type": p.get("proto", "tcp")}
            for p in (c.network.get("ports", []) if c.running else [])]


def network_settings(c: Container) -> dict[str, Any]:
    """NetworkSettings of inspect, in docker's shape."""
    networks: dict[str, Any] = {}
    interfaces = c.network.get("interfaces", []) if c.running else []
    for i in interfaces:
        networks[i["network"]] = {
            "IPAddress": i["ip"], "IPPrefixLen": i["prefixlen"], "Gateway": i["gateway"],
            "MacAddress": i["mac"], "Aliases": c.config.aliases or None,
            "NetworkID": i["network"], "EndpointID": i["host_ifname"],
        }
    first = interfaces[0] if interfaces else {}
    return {
        "Bridge": "", "SandboxKey": c.network.get("netns_path") or "" if c.running else "",
        "Ports": ports_json(c), "IPAddress": first.get("ip", ""),
        "IPPrefixLen": first.get("prefixlen", 0), "Gateway": first.get("gateway", ""),
        "MacAddress": first.get("mac", ""), "Networks": networks,
    }


def state_name(c: Container, restarting: bool = False) -> str:
    """docker's State.Status: the record's status, "paused" while frozen, "restarting"
    while a restart policy waits to start it again."""
    if c.running and c.state.paused:
        return "paused"
    if restarting and not c.running:
        return "restarting"
    return c.state.status


def status_text(c: Container, restarting: bool = False) -> str:
    """The Status column of docker ps."""
    st = c.state
    if st.status == "running":
        health = f" ({st.health['Status']})" if st.health.get("Status") else ""
        paused = " (Paused)" if st.paused else ""
        return f"Up {humanize.duration(time.time() - unix_time(st.started_at))}{paused}{health}"
    if restarting:
        return (f"Restarting ({st.exit_code}) "
                f"{humanize.duration(time.time() - unix_time(st.finished_at))} ago")
    if st.status == "exited":
        return (f"Exited ({st.exit_code}) "
                f"{humanize.duration(time.time() - unix_time(st.finished_at))} ago")
    return st.status.capitalize()


def summary(c: Container, restarting: bool = False) -> dict[str, Any]:
    """A container as GET /containers/json lists it (RESTARTING: a restart policy
    waits to start it again, which the engine knows)."""
    return {
        "Id": c.id, "Names": [f"/{c.name}"], "Image": c.config.image, "ImageID": c.config.image_id,
        "Command": shlex.join(c.config.argv), "Created": unix_time(c.created),
        "State": state_name(c, restarting), "Status": status_text(c, restarting),
        "Ports": ports_list(c),
        "Labels": c.config.labels,
        "SizeRw": 0, "SizeRootFs": 0, "HostConfig": {"NetworkMode": c.config.network_mode},
        "NetworkSettings": {"Networks": network_settings(c)["Networks"]},
        "Mounts": mounts_json(c),
    }


def mounts_json(c: Container) -> list[dict[str, Any]]:
    """The Mounts array of inspect and ps."""
    return [{"Type": m.type, "Source": m.source, "Destination": m.target, "Mode": "",
             "RW": not m.readonly, "Propagation": "rprivate" if m.type == "bind" else ""}
            for m in c.config.mounts]


def inspect(c: Container, restarting: bool = False) -> dict[str, Any]:
    """A container as GET /containers/{id}/json shows it (RESTARTING: a restart policy
    waits to start it again, which the engine knows)."""
    cfg, st = c.config, c.state
    return {
        "Id": c.id, "Created": c.created, "Path": cfg.argv[0] if cfg.argv else "",
        "Args": cfg.argv[1:],
        "State": {
            "Status": state_name(c, restarting), "Running": st.status == "running",
            "Paused": c.running and st.paused, "Restarting": restarting and not c.running,
            "OOMKilled": st.oom_killed, "Dead": st.status == "dead",
            "Pid": st.pid, "ExitCode": st.exit_code, "Error": st.error,
            "StartedAt": st.started_at, "FinishedAt": st.finished_at,
            **({"Health": st.health} if st.health else {}),
        },
        "Image": cfg.image_id, "Name": f"/{c.name}", "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "HostConfig": {
            "NetworkMode": cfg.network_mode, "AutoRemove": cfg.auto_remove,
            "Memory": cfg.memory, "NanoCpus": cfg.nano_cpus, "PidsLimit": cfg.pids_limit or None,
            "Init": cfg.init, "ReadonlyRootfs": cfg.read_only, "UsernsMode": cfg.userns,
            "Privileged": cfg.privileged, "CapAdd": cfg.cap_add or None,
            "CapDrop": cfg.cap_drop or None, "SecurityOpt": cfg.security_opt or None,
            "Binds": [f"{m.source}:{m.target}{':ro' if m.readonly else ''}"
                      for m in cfg.mounts if m.type == "bind"],
            "RestartPolicy": cfg.restart_policy or {"Name": "", "MaximumRetryCount": 0},
            # Logs go to the journal, as with docker's journald driver (docker-py reads
            # this to decide whether it can fetch a detached run's output).
            "LogConfig": {"Type": "journald", "Config": {}},
        },
        "Config": {
            "Hostname": cfg.hostname, "User": cfg.user, "Env": cfg.env, "Cmd": cfg.cmd,
            "Entrypoint": cfg.entrypoint or None, "Image": cfg.image,
            "WorkingDir": cfg.working_dir, "Labels": cfg.labels, "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout, "Tty": cfg.tty, "OpenStdin": cfg.open_stdin,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            **({"Healthcheck": cfg.healthcheck} if cfg.healthcheck else {}),
        },
        "NetworkSettings": network_settings(c),
        "Mounts": mounts_json(c),
        "Systemd": {"Unit": c.scope, "Slice": units.slice_for(c.name)},
    }


def exec_inspect(s: ExecSession) -> dict[str, Any]:
    """An exec session as GET /exec/{id}/json shows it."""
    cfg = s.config
    return {
        "ID": s.id, "Running": s.running, "ExitCode": s.exit_code, "ContainerID": s.container_id,
        "Pid": s.pid, "OpenStdin": cfg.stdin, "OpenStdout": cfg.stdout,
        "OpenStderr": cfg.stderr,
        "ProcessConfig": {"entrypoint": cfg.argv[0], "arguments": cfg.argv[1:], "tty": cfg.tty,
                          "user": cfg.user, "privileged": False},
    }
