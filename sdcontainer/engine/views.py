"""The docker-shaped views of a container that every front end renders.

`docker ps` rows and `docker inspect` documents: REST serves them as they are, D-Bus
serves the same documents, so an action through either shows the same state.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from ..model.spec import ContainerConfig, EndpointSpec
from ..systemd import units
from ..util import fileio, humanize
from ..util.clock import unix_time
from . import networking
from .execs import ExecSession
from .logconfig import log_settings
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
        asked = EndpointSpec(
            i["network"], aliases=i.get("aliases") or [], links=i.get("links") or [],
            ip=i.get("ipam_ip", ""), ip6=i.get("ipam_ip6", ""), mac=i["mac"],
            link_local_ips=i.get("link_local_ips") or [], driver_opts=i.get("driver_opts") or {})
        networks[i["network"]] = endpoint_json(i.get("network_id") or i["network"], asked) | {
            "EndpointID": i["host_ifname"], "Gateway": i["gateway"], "IPAddress": i["ip"],
            "IPPrefixLen": i["prefixlen"], "IPv6Gateway": i.get("gateway6", ""),
            "GlobalIPv6Address": i.get("ip6", ""),
            "GlobalIPv6PrefixLen": i.get("prefixlen6", 0)}
    if not c.running:
        # Created or stopped: the networks it joins at its next start (docker's endpoints
        # outlive the run), with no address.
        last = {i["network"]: i.get("network_id", "") for i in c.network.get("interfaces", [])}
        for e in networking.plan(c.config):
            networks[e.network] = endpoint_json(e.network_id or last.get(e.network, ""), e)
    first = interfaces[0] if interfaces else {}
    return {
        "Bridge": "", "SandboxKey": c.network.get("netns_path") or "" if c.running else "",
        "Ports": ports_json(c), "IPAddress": first.get("ip", ""),
        "IPPrefixLen": first.get("prefixlen", 0), "Gateway": first.get("gateway", ""),
        "MacAddress": first.get("mac", ""), "GlobalIPv6Address": first.get("ip6", ""),
        "GlobalIPv6PrefixLen": first.get("prefixlen6", 0),
        "IPv6Gateway": first.get("gateway6", ""), "Networks": networks,
    }


def endpoint_json(network_id: str, asked: EndpointSpec) -> dict[str, Any]:
    """One entry of NetworkSettings.Networks as docker shows it, with the settings
    ASKED for and without an address (the caller adds those of a running endpoint)."""
    ipam: dict[str, Any] = {}
    if asked.ip:
        ipam["IPv4Address"] = asked.ip
    if asked.ip6:
        ipam["IPv6Address"] = asked.ip6
    if asked.link_local_ips:
        ipam["LinkLocalIPs"] = list(asked.link_local_ips)
    return {
        "IPAMConfig": ipam or None, "Links": list(asked.links) or None,
        "Aliases": list(asked.aliases) or None, "MacAddress": asked.mac,
        "NetworkID": network_id, "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DriverOpts": dict(asked.driver_opts) or None,
    }


def is_special_mode(mode: str) -> bool:
    """Whether network mode MODE names no network (host, none, container:NAME, ns:/PATH)."""
    return mode in ("", "host", "none") or mode.startswith(("container:", "ns:"))


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
    # A volume is a detached copy of its source (open_tree): private.
    return [{"Type": m.type, "Source": m.source, "Destination": m.target, "Mode": m.mode,
             "RW": not m.readonly,
             "Propagation": (m.propagation or "rprivate") if m.type == "bind" else "",
             **({"Name": m.name, "Driver": "local"} if m.type == "volume" else {})}
            for m in c.config.mounts]


def host_mounts(cfg: ContainerConfig) -> list[dict[str, Any]] | None:
    """HostConfig.Mounts as create was given them."""
    out: list[dict[str, Any]] = []
    for m in cfg.mounts:
        if m.origin != "mounts":
            continue
        entry: dict[str, Any] = {"Type": m.type, "Target": m.target}
        if m.type == "bind":
            entry["Source"] = m.source
            if m.propagation:
                entry["BindOptions"] = {"Propagation": m.propagation}
        elif m.type == "volume" and m.name and not m.anonymous:
            entry["Source"] = m.name
            if m.subpath:
                entry["VolumeOptions"] = {"Subpath": m.subpath}
        if m.readonly:
            entry["ReadOnly"] = True
        out.append(entry)
    return out or None


def binds(cfg: ContainerConfig) -> list[str]:
    """HostConfig.Binds as create was given them, with their modes."""
    return [f"{m.name or m.source}:{m.target}{':' + m.mode if m.mode else ''}" if m.origin else
            f"{m.source}:{m.target}{':ro' if m.readonly else ''}"  # records made before modes
            for m in cfg.mounts if (m.type == "bind" and m.origin in ("", "binds"))
            or (m.type == "volume" and m.origin == "binds" and not m.anonymous)]


def port_bindings(cfg: ContainerConfig) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings, from the ports the container publishes."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in cfg.publish:
        first, last = p.host_port, p.host_port + p.count - 1
        host_port = f"{first}-{last}" if p.count > 1 else str(first or "")
        out.setdefault(f"{p.container_port}/{p.proto}", []).append(
            {"HostIp": p.host_ip, "HostPort": host_port})
    return out


def sizes(c: Container, image_size: int) -> dict[str, int]:
    """SizeRw (what the container wrote) and SizeRootFs (that and its image of
    IMAGE_SIZE bytes): slow (a walk of its upper directory), so only on request
    (`inspect --size`), in a worker thread."""
    rw = fileio.du(c.dir / "upper")
    return {"SizeRw": rw, "SizeRootFs": rw + image_size}


def inspect(c: Container, restarting: bool = False) -> dict[str, Any]:
    """A container as GET /containers/{id}/json shows it (RESTARTING: a restart policy
    waits to start it again, which the engine knows)."""
    cfg, st = c.config, c.state
    return {
        "Id": c.id, "Created": c.created, "Path": cfg.argv[0] if cfg.argv else "",
        "ResolvConfPath": c.network.get("resolv_path", ""),
        "HostsPath": c.network.get("hosts_path", ""),
        "HostnamePath": c.network.get("hostname_path", ""),
        # json-file's (and local's) file; the journal has none per container.
        "LogPath": log_settings(c.dir, cfg).path,
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
            "Devices": [{"PathOnHost": d.host, "PathInContainer": d.path,
                         "CgroupPermissions": d.perms} for d in cfg.devices] or None,
            "CapDrop": cfg.cap_drop or None, "SecurityOpt": cfg.security_opt or None,
            "Binds": binds(cfg), "Mounts": host_mounts(cfg),
            "VolumesFrom": cfg.volumes_from or None,
            "Tmpfs": {m.target: m.mode for m in cfg.mounts if m.origin == "tmpfs"} or None,
            "PortBindings": port_bindings(cfg), "PublishAllPorts": cfg.publish_all,
            "Links": [f"/{n}:/{c.name}/{a}" for n, _, a in
                      (link.partition(":") for link in cfg.links)] or None,
            "ExtraHosts": cfg.add_hosts or None, "Dns": cfg.dns, "DnsOptions": cfg.dns_options,
            "DnsSearch": cfg.dns_search, "CpuShares": cfg.cpu_shares,
            "CpusetCpus": cfg.cpuset_cpus, "MemorySwap": cfg.memory_swap,
            "MemorySwappiness": cfg.memory_swappiness,
            "ShmSize": cfg.shm_size or 64 * 1024 * 1024,
            "IpcMode": cfg.ipc_mode or "private", "UTSMode": cfg.uts_mode,
            "PidMode": cfg.pid_mode, "CgroupnsMode": cfg.cgroupns_mode or "host",
            "CgroupParent": cfg.cgroup_parent,
            "DeviceCgroupRules": cfg.device_cgroup_rules or None,
            "Isolation": cfg.isolation, "Runtime": cfg.runtime or "sdcontainer",
            "VolumeDriver": cfg.volume_driver,
            "RestartPolicy": cfg.restart_policy.to_docker(),
            # docker-py reads the driver to decide whether it can fetch a detached run's
            # output: the one in use (engine/logconfig.py), as given.
            "LogConfig": {"Type": cfg.log_driver or "journald", "Config": cfg.log_opts},
        },
        "Config": {
            "Hostname": cfg.hostname, "User": cfg.user, "Env": cfg.env, "Cmd": cfg.cmd,
            "Entrypoint": cfg.entrypoint or None, "Image": cfg.image,
            "WorkingDir": cfg.working_dir, "Labels": cfg.labels, "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout, "Tty": cfg.tty, "OpenStdin": cfg.open_stdin,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "ExposedPorts": {p: {} for p in cfg.exposed_ports} or None,
            **({"Healthcheck": cfg.healthcheck.to_docker()} if cfg.healthcheck else {}),
        },
        "NetworkSettings": network_settings(c),
        "Mounts": mounts_json(c),
        "Systemd": {"Unit": c.scope, "Slice": units.slice_for(c.unit_base, cfg.cgroup_parent)},
    }


def exec_inspect(s: ExecSession) -> dict[str, Any]:
    """An exec session as GET /exec/{id}/json shows it."""
    cfg = s.config
    return {
        "ID": s.id, "Running": s.running, "ExitCode": s.exit_code, "ContainerID": s.container_id,
        "Pid": s.pid, "OpenStdin": cfg.stdin, "OpenStdout": cfg.stdout,
        "OpenStderr": cfg.stderr,
        "ProcessConfig": {"entrypoint": cfg.argv[0], "arguments": cfg.argv[1:], "tty": cfg.tty,
                          "user": cfg.user, "privileged": cfg.privileged},
    }
