"""Docker Engine API: the /containers endpoints."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

from ..engine import devrules, logs, monitor_client, stats
from ..engine import restart as restart_rules
from ..engine.core import Engine
from ..engine.records import Container
from ..engine.views import inspect, sizes, summary
from ..errors import Conflict, InvalidArgument, NoSuchImage, NotFound, SdcError
from ..model.spec import BIND_PROPAGATIONS, ContainerConfig, Healthcheck, MountSpec
from . import filters, netjson, proxy, secjson, volumes
from .http import Hijack, Request, Response, Router, Stream, json_response
from .wire import get, get_obj, get_str_list, get_str_map

# HostConfig fields we do not implement yet: a non-empty value is refused, not ignored.
UNSUPPORTED_HOST_CONFIG = [
    "Sysctls", "Ulimits", "DeviceRequests", "BlkioWeight", "OomKillDisable",
]
# The option kinds of a Binds mode: docker takes at most one of each.
BIND_MODE_KINDS = (("ro", "rw"), ("z", "Z"), BIND_PROPAGATIONS)


def parse_binds(binds: list[str]) -> list[MountSpec]:
    """docker's -v host:container[:ro|rw][,z|Z][,PROPAGATION] strings."""
    result = []
    for b in binds:
        if not b.startswith("/"):  # NAME:/path, a named volume
            result.append(volumes.parse_volume_bind(b))
            continue
        parts = b.split(":")
        if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/"):
            raise InvalidArgument(f"invalid volume specification: {b!r} (named volumes are "
                                  "not supported; use an absolute host path)")
        opts = parts[2].split(",") if len(parts) == 3 else []
        for o in opts:
            if not any(o in kind for kind in BIND_MODE_KINDS):
                raise InvalidArgument(f"invalid volume option {o!r} in {b!r}")
        if any(sum(o in kind for o in opts) > 1 for kind in BIND_MODE_KINDS):
            raise InvalidArgument(f"invalid mode: {parts[2]} (in {b!r}: at most one of "
                                  "ro|rw, one of z|Z and one propagation)")
        result.append(MountSpec("bind", parts[1], parts[0], readonly="ro" in opts,
                                origin="binds", mode=parts[2] if len(parts) == 3 else "",
                                propagation=next((o for o in opts if o in BIND_PROPAGATIONS),
                                                 "")))
    return result


def parse_mounts(mounts: list[Any], tmpfs: dict[str, str]) -> list[MountSpec]:
    """HostConfig.Mounts (type bind|tmpfs) and HostConfig.Tmpfs."""
    result = []
    for m in mounts:
        if not isinstance(m, dict):
            raise InvalidArgument("HostConfig.Mounts entries must be objects")
        kind = get(m, "Type", str, "volume", "Mounts.")
        target = get(m, "Target", str, "", "Mounts.")
        if not target.startswith("/"):
            raise InvalidArgument(f"invalid mount target {target!r}: must be an absolute path")
        readonly = get(m, "ReadOnly", bool, False, "Mounts.")
        if kind == "bind":
            source = get(m, "Source", str, "", "Mounts.")
            if not source.startswith("/"):
                raise InvalidArgument(f"invalid mount source {source!r}: must be an absolute path")
            propagation = get(get_obj(m, "BindOptions", "Mounts."), "Propagation", str, "",
                              "Mounts.BindOptions.")
            if propagation not in ("", *BIND_PROPAGATIONS):
                raise InvalidArgument(f"invalid propagation mode: {propagation} (one of "
                                      f"{', '.join(BIND_PROPAGATIONS)})")
            result.append(MountSpec("bind", target, source, readonly, origin="mounts",
                                    propagation=propagation))
        elif kind == "tmpfs":
            t = get_obj(m, "TmpfsOptions", "Mounts.")
            opts = []
            if t.get("SizeBytes"):
                opts.append(f"size={int(t['SizeBytes'])}")
            opts.append(f"mode={int(t.get('Mode') or 0o1777):o}")
            result.append(MountSpec("tmpfs", target, "", readonly, ",".join(opts),
                                    origin="mounts"))
        elif kind == "volume":
            result.append(volumes.parse_volume_mount(m, target, readonly))
        else:
            raise InvalidArgument(f"mount type {kind!r} is not supported (bind, volume and "
                                  "tmpfs are)")
    for target, options in tmpfs.items():
        if not target.startswith("/"):
            raise InvalidArgument(f"invalid tmpfs target {target!r}: must be an absolute path")
        result.append(MountSpec("tmpfs", target, "", "ro" in options.split(","),
                                ",".join(o for o in options.split(",") if o not in ("ro", "rw")),
                                origin="tmpfs", mode=options))
    return result


def parse_healthcheck(hc: dict[str, Any]) -> Healthcheck | None:
    """Config.Healthcheck, its types checked (its meaning is the engine's to check, once
    merged with the image's); None when not given."""
    if not hc:
        return None
    test = get_str_list(hc, "Test", "Healthcheck.") or []
    durations = {key: get(hc, key, int, 0, "Healthcheck.")
                 for key in ("Interval", "Timeout", "Retries", "StartPeriod")}
    return Healthcheck.from_docker({"Test": test, **durations})


def host_fields(body: dict[str, Any], hc: dict[str, Any]) -> dict[str, Any]:
    """The create input's fields of resources, namespaces, logging and the runtime."""
    h = "HostConfig."
    ints = {key: get(hc, key, int, 0, h) for key in ("CpuShares", "MemorySwap", "ShmSize")}
    if ints["CpuShares"] < 0 or ints["ShmSize"] < 0:
        raise InvalidArgument("CpuShares and ShmSize must not be negative")
    memory = get(hc, "Memory", int, 0, h)
    if ints["MemorySwap"] > 0 and (not memory or ints["MemorySwap"] < memory):
        # dockerd's wording: MemorySwap counts memory and swap together.
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage" if memory else "You should always set the Memory "
                              "limit when using Memoryswap limit, see usage")
    if ints["MemorySwap"] < -1:
        raise InvalidArgument(f"invalid HostConfig.MemorySwap {ints['MemorySwap']}")
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and (not isinstance(swappiness, int) or isinstance(
            swappiness, bool) or not -1 <= swappiness <= 100):
        raise InvalidArgument(f"invalid HostConfig.MemorySwappiness {swappiness!r}")
    fixed = {"Isolation": ("", "default"), "Runtime": ("", "sdcontainer")}
    # VolumeDriver only matters to a volume the create makes (engine/volumes.resolve).
    given = {key: get(hc, key, str, "", h) for key in (*fixed, "VolumeDriver")}
    for key, allowed in fixed.items():
        if given[key] not in allowed:
            # Not even "runc": sdcontainer's own launcher runs every container.
            raise InvalidArgument(f"HostConfig.{key} {given[key]!r} is not supported by "
                                  f"sdcontainer (accepted: {allowed[1]!r} or empty)")
    log = get_obj(hc, "LogConfig", h)
    exposed = get_obj(body, "ExposedPorts")
    for port in exposed:
        number, _, proto = port.partition("/")
        if not number.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid ExposedPorts entry {port!r}")
    return {
        "exposed_ports": sorted(p if "/" in p else f"{p}/tcp" for p in exposed),
        "publish_all": get(hc, "PublishAllPorts", bool, False, h),
        "cpu_shares": ints["CpuShares"], "memory_swap": ints["MemorySwap"],
        "memory_swappiness": swappiness, "shm_size": ints["ShmSize"],
        "cpuset_cpus": get(hc, "CpusetCpus", str, "", h),
        "ipc_mode": get(hc, "IpcMode", str, "", h), "uts_mode": get(hc, "UTSMode", str, "", h),
        "pid_mode": get(hc, "PidMode", str, "", h),
        "cgroupns_mode": get(hc, "CgroupnsMode", str, "", h),
        "cgroup_parent": get(hc, "CgroupParent", str, "", h),
        "device_cgroup_rules": [devrules.check(r) for r in
                                get_str_list(hc, "DeviceCgroupRules", h) or []],
        "isolation": given["Isolation"], "runtime": given["Runtime"],
        "volume_driver": given["VolumeDriver"],
        "log_driver": get(log, "Type", str, "", "HostConfig.LogConfig."),
        "log_opts": get_str_map(log, "Config", "HostConfig.LogConfig."),
    }


def parse_create(body: Any) -> ContainerConfig:
    """A docker create body as the engine's create input, every field checked; what the
    body leaves unset stays unset (the engine takes the image's)."""
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object")
    image = get(body, "Image", str, "")
    if not image:
        raise InvalidArgument("no image specified")
    hc = get_obj(body, "HostConfig")
    for key in UNSUPPORTED_HOST_CONFIG:
        if hc.get(key):
            raise InvalidArgument(f"HostConfig.{key} is not supported by sdcontainer yet")
    restart = get_obj(hc, "RestartPolicy", "HostConfig.")  # checked by the engine
    healthcheck = parse_healthcheck(get_obj(body, "Healthcheck"))
    nano = get(hc, "NanoCpus", int, 0, "HostConfig.")
    quota, period = get(hc, "CpuQuota", int, 0, "HostConfig."), get(hc, "CpuPeriod", int, 0,
                                                                   "HostConfig.")
    if not nano and quota > 0:
        nano = quota * 1_000_000_000 // (period or 100_000)
    memory = get(hc, "Memory", int, 0, "HostConfig.")
    pids = get(hc, "PidsLimit", int, 0, "HostConfig.")
    if memory < 0 or nano < 0:
        raise InvalidArgument("memory and CPU limits must not be negative")
    if memory and memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    stop_timeout = body.get("StopTimeout")
    if stop_timeout is not None and (not isinstance(stop_timeout, int) or stop_timeout < -1):
        raise InvalidArgument(f"invalid StopTimeout {stop_timeout!r}")
    mounts = parse_binds(get_str_list(hc, "Binds", "HostConfig.") or [])
    mounts += parse_mounts(get(hc, "Mounts", list, [], "HostConfig."),
                           get_str_map(hc, "Tmpfs", "HostConfig."))
    return ContainerConfig(
        image=image,
        entrypoint=get_str_list(body, "Entrypoint", allow_string=True),
        cmd=get_str_list(body, "Cmd", allow_string=True),
        env=get_str_list(body, "Env") or [],
        working_dir=get(body, "WorkingDir", str, ""), user=get(body, "User", str, ""),
        hostname=get(body, "Hostname", str, ""),
        tty=get(body, "Tty", bool, False), open_stdin=get(body, "OpenStdin", bool, False),
        stop_signal=get(body, "StopSignal", str, ""),
        stop_timeout=10 if stop_timeout is None else stop_timeout,
        memory=memory, nano_cpus=nano, pids_limit=max(pids, 0),
        init=bool(get(hc, "Init", bool, False, "HostConfig.")),
        read_only=get(hc, "ReadonlyRootfs", bool, False, "HostConfig."),
        auto_remove=get(hc, "AutoRemove", bool, False, "HostConfig."),
        labels=get_str_map(body, "Labels"), **netjson.create_fields(body, hc),
        **volumes.create_fields(body, hc, mounts),
        restart_policy=restart_rules.from_json(restart), healthcheck=healthcheck,
        health_on_failure=get(body, "HealthCheckOnFailureAction", str, "") or "none",
        **secjson.create_fields(hc), **host_fields(body, hc))


def frame(stream: int, data: bytes, tty: bool) -> bytes:
    """docker's multiplexed stream frame (raw bytes for a tty)."""
    return data if tty else struct.pack(">BxxxI", stream, len(data)) + data



def refuse_control_chars(reference: str) -> None:
    """An image reference with a control character is refused before any lookup, so no
    answer echoes a newline into a one-line error."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in reference):
        raise InvalidArgument(f"invalid reference format: {reference!r}")

class ContainerAPI:
    """Handlers bound to an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("POST", "/containers/create", self.create)
        r.add("GET", "/containers/json", self.list)
        r.add("GET", "/containers/{id}/json", self.inspect)
        r.add("POST", "/containers/{id}/start", self.start)
        r.add("POST", "/containers/{id}/stop", self.stop)
        r.add("POST", "/containers/{id}/restart", self.restart)
        r.add("POST", "/containers/{id}/kill", self.kill)
        r.add("POST", "/containers/{id}/wait", self.wait)
        r.add("DELETE", "/containers/{id}", self.remove)
        r.add("DELETE", "/containers/{id}/{alias}", self.remove_link)  # docker's ?link=1
        r.add("GET", "/containers/{id}/logs", self.logs)
        r.add("POST", "/containers/{id}/attach", self.attach)
        r.add("POST", "/containers/{id}/resize", self.resize)
        r.add("GET", "/containers/{id}/top", self.top)

    async def create(self, req: Request) -> Response:
        create = parse_create(req.json())
        refuse_control_chars(create.image)
        try:
            c = await self.engine.create(create, req.arg("name") or None)
        except NoSuchImage:
            # docker's exact words: docker-py tells ImageNotFound (and pulls) by them.
            raise NoSuchImage(f"No such image: {create.image}") from None
        return json_response({"Id": c.id, "Warnings": []}, 201)

    async def list(self, req: Request) -> Response:
        show_all = req.flag("all")
        keep = filters.container_filter(req.arg("filters"), self.engine)
        found = [c for c in self.engine.containers.values()
                 if (show_all or c.running or filters.wants_stopped(req.arg("filters")))
                 and keep(c)]
        found.sort(key=lambda c: c.created, reverse=True)
        limit = req.int_arg("limit", -1) or -1
        if limit > 0:
            found = found[:limit]
        docs = [summary(c, self.engine.restarting(c)) for c in found]
        if req.flag("size"):  # `ps -s`: a walk of each upper directory, so on request only
            for c, doc in zip(found, docs, strict=True):
                doc.update(await self._sizes(c))
        return json_response(docs)

    async def _sizes(self, c: Container) -> dict[str, int]:
        """SizeRw and SizeRootFs of C."""
        try:
            image = await asyncio.to_thread(self.engine.images.resolve, c.config.image_id)
            image_size = int(getattr(image, "size", 0))
        except SdcError:
            image_size = 0  # the image was removed under the container
        return await asyncio.to_thread(sizes, c, image_size)

    async def inspect(self, req: Request) -> Response:
        c = self.engine.get(req.params["id"])
        doc = inspect(c, self.engine.restarting(c))
        if req.flag("size"):
            doc.update(await self._sizes(c))
        return json_response(doc)

    async def start(self, req: Request) -> Response:
        await self.engine.start(req.params["id"])
        return Response(204)

    async def stop(self, req: Request) -> Response:
        await self.engine.stop(req.params["id"], req.int_arg("t"))
        return Response(204)

    async def restart(self, req: Request) -> Response:
        await self.engine.restart(req.params["id"], req.int_arg("t"))
        return Response(204)

    async def kill(self, req: Request) -> Response:
        await self.engine.kill(req.params["id"], req.arg("signal") or "SIGKILL")
        return Response(204)

    async def wait(self, req: Request) -> Stream:
        # docker's clients wait for the response head before they start the container
        # (docker run: create, attach, wait?condition=next-exit, start), so the head goes
        # out at once and the body when the container exits, as dockerd flushes it.
        c = self.engine.get(req.params["id"])
        condition = req.arg("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition {condition!r}")
        waiting = asyncio.ensure_future(self.engine.wait(c.id, condition))

        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b""
                code = await waiting
            except SdcError as e:
                yield json.dumps({"StatusCode": -1, "Error": {"Message": str(e)}}).encode()
                return
            finally:
                waiting.cancel()
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

        return Stream(chunks())

    async def remove(self, req: Request) -> Response:
        await self.engine.remove(req.params["id"], force=req.flag("force"),
                                 volumes=req.flag("v"))
        return Response(204)

    async def remove_link(self, req: Request) -> Response:
        # docker names a link PARENT/ALIAS: DELETE /containers/PARENT/ALIAS?link=1.
        if not req.flag("link") or self.engine.network is None:
            raise NotFound(f"no such container: {req.params['id']}/{req.params['alias']}")
        c = self.engine.get(req.params["id"])
        async with self.engine.lock(c):
            self.engine.still_here(c)
            await self.engine.network.remove_link(c, req.params["alias"])
            await self.engine.save(c)
        return Response(204)

    async def logs(self, req: Request) -> Stream:
        c = self.engine.get(req.params["id"])
        want_out, want_err = req.flag("stdout"), req.flag("stderr")
        if not (want_out or want_err):
            raise InvalidArgument("you must choose at least one stream")
        logs.check_readable(c)  # before the answer's head: docker's 501 for --log-driver none
        tail_arg = req.arg("tail") or "all"
        if tail_arg != "all" and not tail_arg.isdigit():
            raise InvalidArgument(f"invalid tail value {tail_arg!r}")
        tail = None if tail_arg == "all" else int(tail_arg)
        follow = req.flag("follow") and c.running
        stamps = req.flag("timestamps")
        exited = asyncio.shield(self.engine.exit_future(c)) if follow else None
        tty = c.config.tty

        async def chunks() -> AsyncIterator[bytes]:
            async for e in logs.read(c, tail=tail, since=logs.parse_since(req.arg("since")),
                                     until=logs.parse_since(req.arg("until")), follow=follow,
                                     exited=exited):
                if (e.stream == 1 and not want_out) or (e.stream == 2 and not want_err):
                    continue
                data = (logs.rfc3339(e.timestamp_us).encode() + b" " + e.data) if stamps else e.data
                yield frame(e.stream, data, tty)

        content = "application/vnd.docker.raw-stream" if tty else \
            "application/vnd.docker.multiplexed-stream"
        return Stream(chunks(), content)

    async def attach(self, req: Request) -> Hijack:
        c = self.engine.get(req.params["id"])
        opts = {"stdin": req.flag("stdin"), "stdout": req.flag("stdout"),
                "stderr": req.flag("stderr")}
        # As dockerd, an exited container can be attached to: the streams join at its
        # next start (`start -a`).
        if not c.running and c.state.status not in ("created", "exited"):
            raise Conflict("You cannot attach to a stopped container, start it first")
        # As dockerd: the detach sequence is looked for in a terminal's input only.
        detach_keys = proxy.parse_detach_keys(req.arg("detachKeys")) \
            if opts["stdin"] and c.config.tty else b""
        # As dockerd: logs=1 replays the output so far first; stream=0 ends there (a
        # stopped container's output, as docker-py's attach(stream=False, logs=True)).
        replay, live = req.flag("logs"), req.flag("stream")
        connected = None if c.running or not live else self.engine.attach_at_start(c, opts)

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if replay:
                async for e in logs.read(c):
                    if (e.stream == 1 and opts["stdout"]) or (e.stream == 2 and opts["stderr"]):
                        writer.write(frame(e.stream, e.data, c.config.tty))
                await writer.drain()
            if not live:
                return
            if connected is not None:
                streams = await connected
            else:
                # Attached only once the response head is on its way: output sent with
                # the head is lost to clients that read it through a buffered file.
                try:
                    answer, mreader, mwriter = await monitor_client.request(
                        c.control_socket, op="attach", **opts)
                except SdcError:
                    return
                if "error" in answer:
                    mwriter.close()
                    return
                streams = mreader, mwriter
            if streams is None:
                return
            await proxy.pipe(reader, writer, *streams, detach_keys)

        return Hijack(run, "application/vnd.docker.raw-stream" if c.config.tty else
                      "application/vnd.docker.multiplexed-stream")

    async def resize(self, req: Request) -> Response:
        c = self.engine.get(req.params["id"])
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        await monitor_client.call(c.control_socket, op="resize", h=req.int_arg("h", 24),
                                  w=req.int_arg("w", 80))
        return Response(200)

    async def top(self, req: Request) -> Response:
        table = await stats.top(self.engine.get(req.params["id"]), req.arg("ps_args") or "-ef")
        return json_response({"Titles": table.titles, "Processes": table.processes})

