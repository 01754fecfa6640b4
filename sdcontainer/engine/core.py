"""The daemon's core: container lifecycle, from create to remove.

The engine owns the records.  It asks systemd for scopes (units.py), the
zygote for monitors, the image store for layers, and the network manager
for namespaces; it watches each monitor through a pidfd, so an exit is seen
at once, whoever caused it (us, `systemctl stop`, the OOM killer).
Blocking work runs in worker threads; the event loop only coordinates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from .. import paths
from ..errors import (
    Conflict,
    InvalidArgument,
    LaunchError,
    NoSuchContainer,
    NotModified,
    SdcError,
    Unsupported,
)
from ..model.spec import ContainerConfig, LaunchSpec
from ..runtime.launcher import security
from ..runtime.zygote import Zygote
from ..systemd import bus as systemd_bus
from ..systemd import units
from ..util import crashpoints
from ..util.clock import now
from ..util.signals import parse_signal
from . import (
    devrules,
    freezer,
    idmaps,
    integration,
    monitor_client,
    names,
    nsmodes,
    restart,
    security_opts,
)
from .events import EventBus, ScopeWatch
from .execs import ExecManager
from .logconfig import check_log_config, log_settings
from .networking import ContainerNetworking
from .records import Container, ContainerState, ContainerStore, new_id, validate_name
from .volumes import VolumeStore, image_volumes, volumes_from

log = logging.getLogger(__name__)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Engine:
    """Every container of this host, and what can be done to them."""

    def __init__(self, store: ContainerStore, images: Any, zygote: Zygote,
                 network: ContainerNetworking | None = None) -> None:
        self.store = store
        self.images = images
        self.zygote = zygote
        self.network = network
        self.events = EventBus()
        self.containers: dict[str, Container] = {}
        # Stops and kills by others (systemctl, machinectl) as events; listens from reconcile.
        self.scope_watch = ScopeWatch(self.events, self.containers)
        self._unlisten: Callable[[], None] | None = None
        self._spawn_lock = threading.Lock()
        self._exits: dict[str, asyncio.Future[int]] = {}
        # Exit handlers still running (die event, waiters): a removal waits for them.
        self._exiting: dict[str, asyncio.Future[None]] = {}
        self._removals: dict[str, asyncio.Future[None]] = {}  # `wait --condition removed`
        self._pending_attach: dict[str, list[Callable[[bool], Awaitable[None]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.hooks = integration.Hooks(self)  # restart policies, healthchecks, machined
        self.execs = ExecManager(self)
        self.volumes = VolumeStore()
        self._released: set[str] = set()  # exited containers whose units are cleaned up
        self._creating: set[str] = set()  # names taken by creates still awaiting the image
        self._remove_failed: set[str] = set()  # --rm containers whose removal failed
        self._unsaved: set[str] = set()  # records that could not be written (full disk)

    # -- lookup -----------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """The container named REF, or whose id starts with REF."""
        ref = ref.lstrip("/")
        for c in self.containers.values():
            if c.name == ref or c.id == ref:
                return c
        matches = [c for c in self.containers.values() if ref and c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple containers match id prefix {ref}")
        raise NoSuchContainer(f"No such container: {ref}")

    def lock(self, c: Container) -> asyncio.Lock:
        """The per-container lock serialising start, stop and remove.  Whoever takes it
        checks `still_here` first: a removal may have won the race for it."""
        return self._locks.setdefault(c.id, asyncio.Lock())

    def still_here(self, c: Container) -> None:
        """Refuse to act on C once it has been removed (we waited for its lock while a
        removal held it: acting now would bring its record back)."""
        if self.containers.get(c.id) is not c:
            raise NoSuchContainer(f"No such container: {c.name}")

    async def save(self, c: Container) -> None:
        """Write C's record from a worker thread: the snapshot and its sequence number
        are taken here, on the loop, so the newest state is the one that stays on disk
        however the threads finish."""
        await asyncio.to_thread(self.store.write, c, c.to_json(), next(self.store.seq))

    def save_soon(self, c: Container) -> None:
        """`save`, from code that cannot await: never an fsync on the event loop."""
        async def save() -> None:
            try:
                await self.save(c)
            except SdcError as e:
                log.error("container %s: cannot write its record: %s", c.name, e)

        task = asyncio.ensure_future(save())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- create -----------------------------------------------------------------

    async def create(self, req: ContainerConfig, name: str | None = None) -> Container:
        """Record a new container named NAME (or a generated name) as REQ asks (its
        unset fields: the image's); nothing runs yet."""
        name = validate_name(name) if name else names.generate(self._names())
        self._refuse_unit_name(name)
        if name in self._names():
            existing = next((c.id for c in self.containers.values() if c.name == name),
                            "being created")
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                           f'container "{existing}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        # Reserved before the first await: two creates of one name must not both pass.
        self._creating.add(name)
        try:
            return await self._create(req, name)
        finally:
            self._creating.discard(name)

    async def _create(self, req: ContainerConfig, name: str) -> Container:
        image = await asyncio.to_thread(self.images.resolve, req.image)
        ic = image.config
        if req.entrypoint is not None:
            entrypoint, cmd = req.entrypoint, req.cmd or []
        else:
            entrypoint, cmd = list(ic.entrypoint or []), req.cmd or list(ic.cmd or [])
        if not entrypoint and not cmd:
            raise InvalidArgument("no command specified")
        stop_signal = req.stop_signal or ic.stop_signal or "SIGTERM"
        parse_signal(stop_signal)
        if req.stop_timeout < -1:
            raise InvalidArgument(f"invalid stop timeout {req.stop_timeout}")
        check_log_config(req.log_driver or "journald", req.log_opts, req.cri_log_path)
        parse_cpuset(req.cpuset_cpus)
        units.check_cgroup_parent(req.cgroup_parent)
        if req.uts_mode == "host" and req.hostname:
            raise InvalidArgument("conflicting options: hostname and the host's UTS "
                                  "namespace (UTSMode=host)")
        for m in req.mounts:
            if m.type == "bind" and not os.path.exists(m.source):
                raise InvalidArgument(f"invalid mount config: bind source path does not exist: "
                                      f"{m.source}")
            # Lexically normalised ("/tmp/../dev/x", "//dev/x"); symlinks in the image
            # are the launcher's to resolve, and it refuses these trees again.
            target = os.path.normpath("/" + m.target.lstrip("/"))
            if target in ("/", "/proc", "/sys", "/dev") or \
                    target.startswith(("/proc/", "/sys/", "/dev/")):
                raise InvalidArgument(f"invalid mount config: cannot mount over {m.target}")
        security_opts.parse(req.security_opt, req.cap_add, req.cap_drop, req.privileged)
        devices = [security_opts.parse_device(f"{d.host}:{d.path}:{d.perms}")
                   for d in req.devices]
        userns_base = 0
        if req.userns == "auto":
            if req.privileged:
                raise InvalidArgument("--privileged and --userns=auto cannot be combined")
            userns_base = idmaps.allocate({c.config.userns_base for c in
                                           self.containers.values() if c.config.userns_base})
        elif req.userns not in ("", "host"):
            raise InvalidArgument(f"invalid --userns {req.userns!r}: use auto or host")
        inherited = [m for spec in req.volumes_from for m in
                     volumes_from(spec, self.get(spec.split(":", 1)[0]).config.mounts)]
        cid = new_id()
        env = merge_env(list(ic.env), req.env)
        hostname = req.hostname or self.default_hostname(req.uts_mode, cid)
        env = merge_env(env, [f"HOSTNAME={hostname}", *(["TERM=xterm"] if req.tty else [])])
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH)
        config = dataclasses.replace(
            req, image_id=image.id, entrypoint=entrypoint, cmd=cmd, env=env,
            working_dir=req.working_dir or ic.working_dir or "/", user=req.user or ic.user or "",
            hostname=hostname, stop_signal=stop_signal,
            network_mode=req.network_mode or self.default_network_mode(),
            labels={**dict(ic.labels), **req.labels}, devices=devices,
            userns=req.userns if userns_base else "", userns_base=userns_base,
            exposed_ports=sorted({*image_ports(ic), *req.exposed_ports}),
            log_driver=req.log_driver or "journald",
            log_opts=req.log_opts if req.log_driver else {})
        self.validate_namespace_modes(config)
        self.validate_network_mode(config.network_mode)
        if self.network is not None:  # per-network settings, their networks resolved
            config.endpoints = self.network.resolve_endpoints(config)
        integration.configure(config, ic)
        # Volumes are made last, once nothing else can refuse the create.
        config.mounts = await asyncio.to_thread(self.volumes.resolve, req.mounts,
                                                image_volumes(image.raw_config), inherited,
                                                config.volume_driver)
        config.volumes_from = list(req.volumes_from)
        c = Container(id=cid, name=name, created=now(), config=config)
        # The upper dir's mode becomes the mode of the container's /: 0755 as in any
        # rootfs (the container's own directory above it stays 0700).
        try:
            c.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            for sub in ("upper", "work", "merged"):
                (c.dir / sub).mkdir(exist_ok=True, mode=0o755 if sub == "upper" else 0o700)
        except OSError as e:  # a full state filesystem: no half-made directory stays
            await asyncio.to_thread(self.store.delete, c)
            await asyncio.to_thread(self.volumes.forget, config.mounts)
            raise SdcError(f"cannot create {c.dir}: {e.strerror}") from e
        if userns_base:
            # The container's own root directory, as its root sees it: owned by it.
            os.chown(c.dir / "upper", userns_base, userns_base)
        try:
            await self.save(c)
        except SdcError:
            await asyncio.to_thread(self.store.delete, c)
            await asyncio.to_thread(self.volumes.forget, config.mounts)
            raise
        self.containers[cid] = c
        crashpoints.hit("record-written")
        self.events.emit("container", "create", c)
        return c

    def _names(self) -> set[str]:
        # A running container renamed since it started still holds its old name's units.
        return {c.name for c in self.containers.values()} | self._creating | {
            c.unit_name for c in self.containers.values() if c.unit_name}

    def _refuse_unit_name(self, name: str, renaming: Container | None = None) -> None:
        """Refuse NAME while the running scope of a renamed container (other than
        RENAMING) still carries it: the new container's scope could not be made."""
        holder = next((c for c in self.containers.values() if c.unit_name == name
                       and c is not renaming), None)
        if holder is not None:
            raise Conflict(f'Conflict. The container name "/{name}" is still used by the '
                           f"systemd scope {holder.scope} of running container "
                           f'"{holder.id}" (renamed to {holder.name}); it is free once that '
                           "container stops.")

    def default_network_mode(self) -> str:
        """'bridge' once networking is available, else 'none'."""
        return "bridge" if self.network is not None else "none"

    def default_hostname(self, uts_mode: str, cid: str) -> str:
        """The host name of a container given none: the host's (UTSMode host), the
        donor's (container:NAME), else its short id."""
        if uts_mode == "host":
            return os.uname().nodename
        if uts_mode.startswith("container:"):
            return self.get(uts_mode.split(":", 1)[1]).config.hostname
        return cid[:12]

    def validate_namespace_modes(self, cfg: ContainerConfig) -> None:
        """Refuse IPC, UTS, PID and cgroup namespace modes we cannot honour."""
        if cfg.ipc_mode.startswith("container:"):
            donor = self.get(cfg.ipc_mode.split(":", 1)[1])
            if donor.config.ipc_mode not in ("shareable", "host"):
                # As docker: a private IPC namespace stays private.
                raise InvalidArgument(f"cannot join the IPC namespace of {donor.name}: it is "
                                      "not shareable (create it with IpcMode shareable)")
        elif not cfg.ipc_mode.startswith(nsmodes.PREFIX) and \
                cfg.ipc_mode not in ("", "private", "shareable", "host"):
            raise InvalidArgument(f"invalid IpcMode {cfg.ipc_mode!r}: use private, shareable, "
                                  "host, container:NAME or ns:/PATH")
        if not cfg.uts_mode.startswith(("container:", nsmodes.PREFIX)) and \
                cfg.uts_mode not in ("", "host", "private"):
            raise InvalidArgument(f"invalid UTSMode {cfg.uts_mode!r}: use private, host, "
                                  "container:NAME or ns:/PATH")
        if not cfg.pid_mode.startswith("container:") and \
                cfg.pid_mode not in ("", "private", "host"):
            raise InvalidArgument(f"invalid PidMode {cfg.pid_mode!r}: use private, host or "
                                  "container:NAME")
        for mode, kind in ((cfg.ipc_mode, "ipc"), (cfg.uts_mode, "uts"),
                           (cfg.pid_mode, "pid"), (cfg.network_mode, "network")):
            nsmodes.validate(mode, kind, self.get)
        if cfg.cgroupns_mode not in ("", "host", "private"):
            raise InvalidArgument(f"invalid CgroupnsMode {cfg.cgroupns_mode!r}: use host or "
                                  "private")

    def validate_network_mode(self, mode: str) -> None:
        """Refuse a network mode we cannot honour, before anything is created."""
        if mode.startswith("container:"):
            self.get(mode.split(":", 1)[1])
        if self.network is not None:
            self.network.validate(mode)
        elif mode not in ("none", "host") and not mode.startswith(("container:",
                                                                   nsmodes.PREFIX)):
            raise InvalidArgument(f"network mode {mode!r} is not available on this host")

    # -- start ------------------------------------------------------------------

    async def start(self, ref: str) -> Container:
        """Start container REF: scope, monitor, sandbox, workload."""
        c = self.get(ref)
        async with self.lock(c):
            self.still_here(c)
            if c.running:
                raise NotModified("container already started")
            self.hooks.explicit_start(c)
            await self._start_locked(c)
        return c

    async def _start_locked(self, c: Container) -> None:
        # A previous run's status must not pass for this run's.
        self._forget_exit_file(c)
        c.unit_name = ""  # this run's units carry its current name
        monitor_pid = 0
        # Every refusal, even before the monitor exists (a namespace path gone, an image
        # removed, a network down), goes through _start_failed: no endpoint stays up and
        # an AutoRemove container is removed, as dockerd does.
        try:
            image = await asyncio.to_thread(self.images.resolve, c.config.image_id)
            self._namespaces(c.config)  # refused before the network is set up
            await asyncio.to_thread(self.volumes.prepare, c.config.mounts)
            net, etc_files = await self._network_up(c)
            c.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            spec = self.launch_spec(c, [str(p) for p in image.layers], net, etc_files)
            if self.network is not None and c.config.links:  # docker's ALIAS_* variables
                spec.env = merge_env(self.network.link_env(c), spec.env)
            policy, allow = security_opts.device_allow(c.config.devices, c.config.privileged)
            if policy != "auto" and c.config.device_cgroup_rules:
                allow += await asyncio.to_thread(devrules.allow_entries,
                                                 c.config.device_cgroup_rules)
            monitor_pid = await asyncio.to_thread(self._spawn, spec)
            crashpoints.hit("monitor-spawned")
            limits = units.ScopeLimits(
                kill_signal=parse_signal(c.config.stop_signal),
                stop_timeout_s=max(c.config.stop_timeout, 0),
                memory_max=c.config.memory,
                cpu_quota_per_sec_us=c.config.nano_cpus // 1000,
                tasks_max=c.config.pids_limit if c.config.pids_limit > 0 else 0,
                device_policy=policy, device_allow=tuple(allow),
                cpu_weight=units.cpu_weight(c.config.cpu_shares) if c.config.cpu_shares else 0,
                memory_swap_max=units.swap_max(c.config.memory, c.config.memory_swap))
            await units.start_scope(c.name, monitor_pid,
                                    f"sdcontainer {c.name} ({c.config.image})", limits,
                                    c.config.cgroup_parent)
            # The start job is done, the monitor is in the scope: it may now run.
            scoped = await monitor_client.call(c.control_socket, op="scoped")
            if "error" in scoped:
                raise LaunchError(f"container {c.name}: {scoped['error']}", 125)
            crashpoints.hit("scope-created")
            for attach in self._pending_attach.pop(c.id, []):
                await attach(True)
            pid = await monitor_client.go(c.control_socket)
            crashpoints.hit("workload-started")
        except LaunchError as e:
            await self._start_failed(c, monitor_pid, e.exit_code, str(e))
            raise
        except BaseException as e:
            await self._start_failed(c, monitor_pid, 125, str(e))
            raise
        c.state = ContainerState(status="running", pid=pid, monitor_pid=monitor_pid,
                                 started_at=now())
        self._released.discard(c.id)
        self._remove_failed.discard(c.id)
        self.scope_watch.started(c)
        self._watch(c)
        # The workload runs: a record we cannot write (a full disk, perhaps filled by
        # the workload itself already) does not make the start a failure.
        await self._save_or_retry(c)
        self.events.emit("container", "start", c)
        await self.hooks.started(c)

    def _spawn(self, spec: LaunchSpec) -> int:
        with self._spawn_lock:
            return self.zygote.spawn(spec)

    async def _start_failed(self, c: Container, monitor_pid: int, code: int, error: str) -> None:
        """Undo a half-made start: no scope, monitor, netns or mount may stay behind."""
        if monitor_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(monitor_pid, signal.SIGKILL)
            with contextlib.suppress(SdcError):
                await units.stop(c.scope)
            await units.wait_gone(c.scope, 5)
            await units.release(c.unit_base, c.config.cgroup_parent)
        await self._network_down(c)
        c.state = ContainerState(status="exited" if monitor_pid else "created", exit_code=code,
                                 error=error, finished_at=now())
        try:
            await self.save(c)
        except SdcError as e:
            # The start's own error is the one to report; attached clients must still hear.
            log.error("container %s: recording the failed start: %s", c.name, e)
        for attach in self._pending_attach.pop(c.id, []):
            await attach(False)
        if c.config.auto_remove:
            await self._remove_locked(c)

    def launch_spec(self, c: Container, layers: list[str], net: str,
                    etc_files: dict[str, str]) -> LaunchSpec:
        """Everything the monitor and launcher need, paths resolved."""
        cfg = c.config
        sec = security_opts.parse(cfg.security_opt, cfg.cap_add, cfg.cap_drop, cfg.privileged)
        label = security_opts.selinux_labels(sec)[0] if security_opts.selinux_enabled() else ""
        ns = self._namespaces(cfg)
        logs = log_settings(c.dir, cfg)
        return LaunchSpec(
            id=c.id, name=c.name, scope=c.scope, argv=c.config.argv, env=c.config.env,
            cwd=c.config.working_dir, user=c.config.user, hostname=c.config.hostname,
            tty=c.config.tty, open_stdin=c.config.open_stdin, init=c.config.init,
            read_only=c.config.read_only, layers=layers, upper=str(c.dir / "upper"),
            work=str(c.dir / "work"), rootfs=str(c.dir / "merged"), mounts=c.config.mounts,
            net=net, etc_files=etc_files, control_socket=str(c.control_socket),
            exit_file=str(c.exit_file),
            journal_fields={
                "CONTAINER_NAME": c.name, "CONTAINER_ID": c.id[:12], "CONTAINER_ID_FULL": c.id,
                "CONTAINER_TAG": c.id[:12], "IMAGE_NAME": c.config.image,
                "SYSLOG_IDENTIFIER": c.id[:12],
            },
            caps=sec.caps, no_new_privs=sec.no_new_privs, seccomp=sec.seccomp,
            masked_paths=security.MASKED_PATHS if sec.masked else [],
            readonly_paths=security.READONLY_PATHS if sec.masked else [],
            devices=cfg.devices, privileged=cfg.privileged, group_add=cfg.group_add,
            apparmor=sec.apparmor, process_label=label, userns_base=cfg.userns_base,
            userns_size=idmaps.BLOCK if cfg.userns_base else 0, ipc=ns["ipc"], uts=ns["uts"],
            pid=ns["pid"],
            cgroupns="new" if cfg.cgroupns_mode == "private" else "host",
            cpus=parse_cpuset(cfg.cpuset_cpus), shm_size=cfg.shm_size,
            log_driver="json-file" if logs.file_based else logs.driver, json_log=logs.path,
            log_max_size=logs.max_size, log_max_file=logs.max_file,
            cri_log_path=cfg.cri_log_path)

    async def reopen_log(self, ref: str) -> None:
        """Have running container REF's supervisor close and reopen its log files (the
        CRI log, a json-file log) after someone renamed them away: kubelet's
        ReopenContainerLog."""
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"container {c.name} is not running: no log file to reopen")
        answer = await monitor_client.call(c.control_socket, op="reopen_log")
        if "error" in answer:
            raise SdcError(f"container {c.name}: cannot reopen its log: {answer['error']}")

    def _namespaces(self, cfg: ContainerConfig) -> dict[str, str]:
        """The launcher's ipc, uts and pid settings: "new", "host", or the path of a
        namespace to join (a path checked again, a donor container running)."""
        return {kind: nsmodes.setting(mode, kind, self.get) for mode, kind in
                ((cfg.ipc_mode, "ipc"), (cfg.uts_mode, "uts"), (cfg.pid_mode, "pid"))}

    async def _network_up(self, c: Container) -> tuple[str, dict[str, str]]:
        if self.network is not None:
            return await self.network.up(c)
        # Without a network manager (no netlink access): the modes needing none.
        mode = c.config.network_mode
        if mode == "host":
            return "host", {}
        if mode.startswith(nsmodes.PREFIX):
            return nsmodes.check(mode, "network"), {}
        if mode.startswith("container:"):
            other = self.get(mode.split(":", 1)[1])
            if not other.running:
                raise Conflict(f"cannot join the network of {other.name}: it is not running")
            return f"/proc/{other.state.pid}/ns/net", {}
        return "new", {}

    async def _network_down(self, c: Container) -> None:
        if self.network is not None:
            await self.network.down(c)

    # -- exits ------------------------------------------------------------------

    def _watch(self, c: Container) -> None:
        """Learn of C's end through a pidfd on its monitor."""
        loop = asyncio.get_running_loop()
        self._exits.setdefault(c.id, loop.create_future())
        try:
            fd = os.pidfd_open(c.state.monitor_pid)
        except ProcessLookupError:
            loop.call_soon(lambda: asyncio.ensure_future(self._exited(c, 255)))
            return

        def ready() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            task = asyncio.ensure_future(self._exited(c, 137))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.add_reader(fd, ready)

    async def _exited(self, c: Container, default_code: int) -> None:
        """C's monitor is gone: fold in its exit file, clean up, wake waiters.

        Once the exit status is known, nothing that fails after it (a full state
        disk, a D-Bus or netlink error) may keep it from the waiters: `wait` and
        attached `run`s are answered whatever happens to the clean-up.
        """
        if c.state.status != "running":
            return
        handled = self._exiting[c.id] = asyncio.get_running_loop().create_future()
        self.scope_watch.exiting(c)
        result = read_exit_file(c)
        code, oom = exit_status(result, default_code)
        try:
            # The monitor died (killed alone?) but the workload lives on unsupervised; or,
            # in a pid namespace not its own (PidMode host, container:), the workload's
            # end killed nothing else: what is left in the scope goes with it, as in runc.
            shared_pid = c.config.pid_mode not in ("", "private")
            if (not result or shared_pid) and await units.active_state(c.scope) == "active":
                with contextlib.suppress(SdcError):
                    await units.kill(c.scope, signal.SIGKILL)
                await units.wait_gone(c.scope, 10)
            await self.hooks.exiting(c)
        except Exception as e:
            log.error("container %s: stopping what is left of it: %s", c.name, e)
        finally:
            c.state.status, c.state.paused = "exited", False
            c.state.exit_code, c.state.oom_killed = code, oom
            c.state.error = str(result.get("error", ""))
            c.state.finished_at = str(result.get("finished_at") or now())
            c.state.pid = 0
        try:
            for what, failure in zip(("releasing its units", "taking down its network"),
                                     await asyncio.gather(
                                         units.release(c.unit_base, c.config.cgroup_parent),
                                         self._network_down(c), return_exceptions=True),
                                     strict=True):
                if isinstance(failure, Exception):
                    log.error("container %s: %s: %s", c.name, what, failure)
            self._released.add(c.id)
            c.unit_name = ""  # its units are gone: the old name (if renamed) is free
            # `systemctl stop` (machinectl terminate) is the admin's `docker stop`: no
            # restart policy brings the container back, `unless-stopped` included.  The
            # stop jobs of a shutdown are not one.  (Systemd announced the job before it
            # answered the release above, so the watch has seen it by now.)
            if self.scope_watch.stopped_elsewhere(c) and not await restart.system_stopping():
                c.state.stop_requested = True
            if await self._save_or_retry(c):
                await asyncio.to_thread(self._forget_exit_file, c)
            if c.state.oom_killed:
                self.events.emit("container", "oom", c)
            self.scope_watch.before_die(c, known=bool(result))
            self.events.emit("container", "die", c, exitCode=str(c.state.exit_code))
            self.scope_watch.after_die(c)
            await self.hooks.exited(c)
        finally:
            fut = self._exits.pop(c.id, None)
            if fut is not None and not fut.done():
                fut.set_result(c.state.exit_code)
            if self._exiting.get(c.id) is handled:
                del self._exiting[c.id]
            handled.set_result(None)
        if c.config.auto_remove:
            try:
                async with self.lock(c):
                    await self._remove_locked(c)
            except Exception as e:
                # `wait --condition removed` (run --rm) must not wait for ever on it.
                log.error("container %s: removing it (--rm): %s", c.name, e)
                self._remove_failed.add(c.id)
                self._removal_done(c)

    async def _save_or_retry(self, c: Container) -> bool:
        """Write C's record; if that fails (a full state disk), log it, retry in the
        background until it succeeds, and return False.

        An exit status that cannot be written stays in the monitor's exit file in
        C's runtime directory (on /run), where a restarted daemon finds it.
        """
        try:
            await self.save(c)
        except (SdcError, OSError) as e:
            what = f"exited with status {c.state.exit_code}" if not c.running else "started"
            log.error("container %s %s, but its record cannot be written (%s); "
                      "retrying until it can", c.name, what, e)
            if c.id not in self._unsaved:
                self._unsaved.add(c.id)
                task = asyncio.ensure_future(self._retry_save(c))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return False
        self._unsaved.discard(c.id)
        return True

    async def _retry_save(self, c: Container) -> None:
        """Write C's record (whatever its state is by then) once the disk has room."""
        delay = 1.0
        while c.id in self._unsaved:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            try:
                async with self.lock(c):
                    if c.id not in self.containers or c.id not in self._unsaved:
                        break  # removed, or saved by someone else meanwhile
                    await self.save(c)
                    if not c.running:
                        # Folded in now; a running container's file is its next exit's.
                        await asyncio.to_thread(self._forget_exit_file, c)
            except (SdcError, OSError):
                continue
            log.info("container %s: its record is written now", c.name)
            break
        self._unsaved.discard(c.id)

    @staticmethod
    def _forget_exit_file(c: Container) -> None:
        """Remove the monitor's exit file (folded into the record, or stale)."""
        for f in (c.exit_file, c.legacy_exit_file):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()

    async def wait(self, ref: str, condition: str = "not-running") -> int:
        """Wait until REF stops (or is removed); return its exit code."""
        c = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition {condition!r}")
        if c.running or condition == "next-exit":
            fut = self._exits.setdefault(c.id, asyncio.get_running_loop().create_future())
            await asyncio.shield(fut)
        if condition == "removed":
            # Checked and subscribed with no await between: a removal cannot slip by.
            while c.id in self.containers and c.id not in self._remove_failed:
                gone = self._removals.setdefault(c.id, asyncio.get_running_loop().create_future())
                await asyncio.shield(gone)
        return c.state.exit_code

    def _removal_done(self, c: Container) -> None:
        """Wake `wait --condition removed` on C: removed, or its --rm removal failed."""
        fut = self._removals.pop(c.id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    # -- stop, kill -------------------------------------------------------------

    async def stop(self, ref: str, timeout: int | None = None) -> None:
        """Stop REF as systemd stops its scope; after TIMEOUT seconds, SIGKILL."""
        c = self.get(ref)
        if not c.running and self.hooks.stop_requested(c):
            self.events.emit("container", "stop", c)
            return
        if not c.running:
            raise NotModified("container already stopped")
        t = c.config.stop_timeout if timeout is None else timeout
        c.state.stop_requested = True
        fut = self._exits.setdefault(c.id, asyncio.get_running_loop().create_future())
        with contextlib.suppress(SdcError):
            await units.stop(c.scope)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout=max(t, 0) + 0.5 if t >= 0 else None)
        except TimeoutError:
            with contextlib.suppress(SdcError):
                await units.kill(c.scope, signal.SIGKILL)
            await asyncio.shield(fut)
        self.events.emit("container", "stop", c)

    async def kill(self, ref: str, sig: str | int = "SIGKILL") -> None:
        """Send SIG to every process of REF's scope."""
        c = self.get(ref)
        number = parse_signal(sig)
        if not c.running:
            raise Conflict(f"Cannot kill container: {c.name}: Container {c.id} is not running")
        # As docker: a SIGKILL returns once the container is dead (its exit handled).
        fut = self._exits.setdefault(c.id, asyncio.get_running_loop().create_future()) \
            if number == signal.SIGKILL else None
        self.scope_watch.signalled(c, number)
        await units.kill(c.scope, number)
        self.events.emit("container", "kill", c, signal=str(number))
        if fut is not None:
            # Bounded as dockerd bounds it: a task stuck in the kernel (D state) must
            # not hang the request; its exit is still handled when it comes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(fut), 10)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        """Stop (if running), then start."""
        c = self.get(ref)
        if c.running:
            await self.stop(ref, timeout)
        await self.start(c.id)
        self.events.emit("container", "restart", c)

    # -- remove -----------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """Remove REF; a running one only with FORCE (then it is killed first); with
        VOLUMES its anonymous volumes too (`rm -v`)."""
        c = self.get(ref)
        # An exit being handled finishes first: its die event and waiters come before
        # the removal, its record write does not race the deletion, and a restart it
        # schedules is seen below.
        pending = self._exiting.get(c.id)
        if pending is not None:
            await asyncio.shield(pending)
        if not c.running and not force and self.restarting(c):
            raise Conflict(f"You cannot remove a restarting container {c.id}. Stop the "
                           "container before attempting removal or force remove")
        if c.running:
            if not force:
                raise Conflict(f"You cannot remove a running container {c.id}. Stop the "
                               "container before attempting removal or force remove")
            with contextlib.suppress(Conflict):  # it exited meanwhile: as good
                await self.kill(c.id, signal.SIGKILL)
        pending = self._exiting.get(c.id)
        if pending is not None:
            await asyncio.shield(pending)
        if force and self.containers.get(c.id) is not c:
            return  # gone meanwhile (--rm): what a forced removal wanted
        self.hooks.stop_requested(c)  # a pending restart must not bring it back
        async with self.lock(c):
            if force and self.containers.get(c.id) is not c:
                return
            self.still_here(c)
            if c.running:  # a restart policy started it again while we waited
                if not force:
                    raise Conflict(f"You cannot remove a running container {c.id}. Stop the "
                                   "container before attempting removal or force remove")
                with contextlib.suppress(Conflict):
                    await self.kill(c.id, signal.SIGKILL)
                pending = self._exiting.get(c.id)
                if pending is not None:
                    await asyncio.shield(pending)
            await self._remove_locked(c, volumes)

    async def _remove_locked(self, c: Container, volumes: bool = False) -> None:
        """Remove stopped C.  Nothing here needs free space on the state disk (its
        steps unlink), and the first step frees what C wrote, so a container that
        filled the disk can always be removed."""
        if c.id not in self.containers:
            return
        await asyncio.to_thread(self.store.discard_layer, c)
        await self._network_down(c)
        crashpoints.hit("rm-network-down")
        if c.id not in self._released and c.state.status != "created":
            await units.release(c.unit_base, c.config.cgroup_parent)
        self._released.discard(c.id)
        self._remove_failed.discard(c.id)
        self._unsaved.discard(c.id)
        await asyncio.to_thread(self.store.delete, c)
        self.containers.pop(c.id, None)
        self._locks.pop(c.id, None)
        self._removal_done(c)
        self.scope_watch.forget(c)
        self.events.emit("container", "destroy", c)
        if volumes or c.config.auto_remove:  # docker's --rm takes anonymous volumes too
            await asyncio.to_thread(self.volumes.remove_anonymous, c,
                                    list(self.containers.values()))

    # -- rename, pause ----------------------------------------------------------

    async def rename(self, ref: str, new_name: str) -> None:
        """Rename container REF to NEW_NAME, running or not.

        systemd units cannot be renamed: a running container's scope and slice keep the
        name they were made with (`unit_name`) until it next starts, and that name stays
        taken meanwhile.  Its record, inspect, ps, events and the hosts files of its
        networks use the new name at once."""
        c = self.get(ref)
        new = validate_name(new_name).lstrip("/")
        if new == c.name:
            raise Conflict(f"Renaming a container with the same name as its current name: {new}")
        self._refuse_unit_name(new, renaming=c)
        if new in self._names() and new != c.unit_name:
            raise Conflict(f'Conflict. The container name "/{new}" is already in use')
        async with self.lock(c):
            self.still_here(c)
            old, old_unit = c.name, c.unit_name
            c.name = new
            # Renamed back to the name its units carry, they are named after it again.
            c.unit_name = "" if not c.running or new == (old_unit or old) else (old_unit or old)
            try:
                await self.save(c)
            except BaseException:
                c.name, c.unit_name = old, old_unit
                raise
            if c.running and self.network is not None:
                try:
                    await asyncio.to_thread(self.network.manager.rename, c.id, new)
                except (SdcError, OSError) as e:
                    log.error("container %s: renaming it in its networks' hosts files: %s",
                              new, e)
        self.events.emit("container", "rename", c, oldName=f"/{old}")

    async def pause(self, ref: str, paused: bool = True) -> None:
        """Freeze REF's scope (PAUSED) or thaw it, record it, and say so (pause, unpause)."""
        c = self.get(ref)
        verb = "pause" if paused else "unpause"
        async with self.lock(c):
            self.still_here(c)
            if not c.running:
                raise Conflict(f"Container {c.id} is not running")
            # Asked of systemd even when the record agrees: the scope may have been
            # frozen or thawed behind our back (`systemctl freeze`).
            try:
                await (units.freeze if paused else units.thaw)(c.scope)
            except Unsupported:
                raise freezer.unsupported(c.name, verb) from None
            c.state.paused = paused
            await self._save_or_retry(c)
        self.events.emit("container", verb, c)

    def restarting(self, c: Container) -> bool:
        """Whether a restart policy waits to start C again (docker's State.Restarting)."""
        return self.hooks.restarts.restarting(c)

    # -- attach -----------------------------------------------------------------

    def attach_at_start(self, c: Container, opts: dict[str, bool]) -> asyncio.Future[Streams]:
        """Attach to C's monitor when C starts, before its workload runs, so no output is lost.

        The future gets the monitor connection, or None if the start failed.
        """
        fut: asyncio.Future[Streams] = asyncio.get_running_loop().create_future()

        async def attach(started: bool) -> None:
            if fut.done():
                return
            if not started:
                fut.set_result(None)
                return
            try:
                answer, reader, writer = await monitor_client.request(
                    c.control_socket, op="attach", **opts)
                fut.set_result((reader, writer) if "error" not in answer else None)
            except SdcError:
                fut.set_result(None)

        self._pending_attach.setdefault(c.id, []).append(attach)
        return fut

    def exit_future(self, c: Container) -> asyncio.Future[int]:
        """A future that completes with C's exit code when it next exits."""
        return self._exits.setdefault(c.id, asyncio.get_running_loop().create_future())

    # -- daemon start -----------------------------------------------------------

    async def reconcile(self) -> None:
        """Load records and match them with what systemd and the kernel say now."""
        if self._unlisten is None:
            self._unlisten = systemd_bus.listen(self.scope_watch.on_systemd_signal)
        for c in await asyncio.to_thread(self.store.load_all):
            self.containers[c.id] = c
            if not c.running:
                if await units.active_state(c.scope) in (
                        "active", "activating", "deactivating"):
                    # A start the daemon died in: the scope exists, the record never
                    # said running.  Finish it as a failed start.
                    log.warning("container %s: stopping the scope of an unfinished start",
                                c.name)
                    with contextlib.suppress(SdcError):
                        await units.kill(c.scope, signal.SIGKILL)
                    await units.release(c.unit_base, c.config.cgroup_parent)
                    c.state = ContainerState(status="exited", exit_code=255, finished_at=now(),
                                             error="the daemon died while starting it")
                    await self.save(c)
                continue
            if monitor_alive(c):
                self._watch(c)
                continue
            log.info("container %s ended while the daemon was down", c.name)
            self._exits.setdefault(c.id, asyncio.get_running_loop().create_future())
            await self._exited(c, 255)
        for c in list(self.containers.values()):
            if c.config.auto_remove and not c.running and c.state.status == "exited":
                async with self.lock(c):
                    await self._remove_locked(c)
        if self.network is not None:
            await self.network.reconcile({c.id for c in self.containers.values() if c.running})
        await self.cleanup_orphans()
        await asyncio.to_thread(self.volumes.collect_leftovers)
        await self.hooks.daemon_started()
        # Downloads and unpacks a crash cut short (in tmp/, unreferenced blobs) go.
        collect = getattr(self.images, "collect_garbage", None)
        if collect is not None:
            await asyncio.to_thread(collect, clean_tmp=True)

    async def cleanup_orphans(self) -> None:
        """Remove directories that belong to no record (a crash between steps)."""
        for root in (paths.CONTAINERS_DIR, paths.RUN_CONTAINERS_DIR):
            if not root.is_dir():
                continue
            for d in root.iterdir():
                if d.name not in self.containers and not d.name.endswith(".corrupt"):
                    log.info("removing leftover %s", d)
                    await asyncio.to_thread(shutil.rmtree, d, True)


def read_exit_file(c: Container) -> dict[str, Any]:
    """What C's monitor recorded when its workload ended ({} if nothing): its
    runtime directory, or the state directory where earlier monitors wrote it."""
    for f in (c.exit_file, c.legacy_exit_file):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def exit_status(result: dict[str, Any], default_code: int) -> tuple[int, bool]:
    """(exit code, OOM-killed) from an exit file's RESULT; DEFAULT_CODE without one."""
    try:
        return int(result.get("exit_code", default_code)), bool(result.get("oom_killed"))
    except (TypeError, ValueError):
        return default_code, False


def monitor_alive(c: Container) -> bool:
    """Whether C's recorded monitor pid is still its monitor (pids get reused)."""
    try:
        with open(f"/proc/{c.state.monitor_pid}/cgroup") as f:
            return any(line.rstrip().endswith("/" + c.scope) for line in f)
    except OSError:
        return False


def image_ports(ic: Any) -> list[str]:
    """The image's exposed ports, "80/tcp"."""
    return [p if "/" in p else f"{p}/tcp" for p in getattr(ic, "exposed_ports", None) or []]


def parse_cpuset(text: str) -> list[int]:
    """CpusetCpus ("0-2,4") as CPU numbers; refused if it names a CPU this host lacks."""
    cpus: set[int] = set()
    try:
        for part in filter(None, text.split(",")):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise InvalidArgument(f"invalid CpusetCpus {text!r}: use a list like 0-2,4") from None
    missing = cpus - os.sched_getaffinity(0)
    if missing:
        raise InvalidArgument(f"invalid CpusetCpus {text!r}: CPU {min(missing)} is not "
                              "available on this host")
    return sorted(cpus)


def merge_env(base: list[str], override: list[str]) -> list[str]:
    """BASE with OVERRIDE's variables replacing or appended, order kept."""
    result = {e.split("=", 1)[0]: e for e in base}
    for e in override:
        result[e.split("=", 1)[0]] = e
    return list(result.values())
