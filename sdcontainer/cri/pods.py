"""Pod sandboxes and their containers over the engine: the CRI service's decisions,
free of protobuf (the servicers in service.py translate).  A sandbox is pinned
namespaces and a record; a CRI container is an ordinary engine container that
joins them (docs/kubernetes.md)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from pathlib import Path

from ..engine.core import Engine
from ..engine.records import Container
from ..errors import Conflict, InvalidArgument, NotFound, NotModified
from ..model.spec import ContainerConfig
from ..systemd.units import check_cgroup_parent
from . import pins
from .records import CriMeta, container_name, meta_of
from .sandboxes import NOTREADY, PODS_RUN_DIR, Sandbox, SandboxStore, find

log = logging.getLogger(__name__)


class Pods:
    """Every pod sandbox of this host, and the CRI containers in them."""

    def __init__(self, engine: Engine, store: SandboxStore | None = None) -> None:
        self.engine = engine
        self.store = store or SandboxStore()
        self.sandboxes: dict[str, Sandbox] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- sandboxes --------------------------------------------------------------

    async def load(self) -> None:
        """Read the records at daemon start.  A sandbox whose namespaces are gone (a
        reboot) is NOTREADY; pins no record owns (a crash mid-run) are let go."""
        for s in await asyncio.to_thread(self.store.load_all):
            self.sandboxes[s.id] = s
            if s.ready and not pins.pinned(s.pin_dir, pinned_kinds(s)):
                log.info("pod sandbox %s lost its namespaces (a reboot?): not ready", s.id[:12])
                await pins.unpin(s.pin_dir)
                s.state = NOTREADY
                await self.save(s)
        if PODS_RUN_DIR.is_dir():
            for d in PODS_RUN_DIR.iterdir():
                if d.name not in self.sandboxes:
                    log.info("letting go of leftover pod namespaces %s", d)
                    await pins.unpin(d)

    async def save(self, s: Sandbox) -> None:
        """Write S's record from a worker thread."""
        await asyncio.to_thread(self.store.save, s)

    def get(self, ref: str) -> Sandbox:
        """The sandbox REF (an id or a unique prefix of one)."""
        return find(self.sandboxes, ref)

    def lock(self, s: Sandbox) -> asyncio.Lock:
        """Serialises run, stop, remove and container create/start in sandbox S."""
        return self._locks.setdefault(s.id, asyncio.Lock())

    async def run(self, s: Sandbox) -> Sandbox:
        """Pin S's namespaces and record it; nothing stays when it fails."""
        check_cgroup_parent(s.cgroup_parent)
        if not s.name or not s.uid or not s.namespace:
            raise InvalidArgument("pod sandbox metadata needs name, uid and namespace")
        await pins.pin(s.pin_dir, pinned_kinds(s), s.hostname)
        try:
            await self.save(s)
        except BaseException:
            await pins.unpin(s.pin_dir)
            raise
        self.sandboxes[s.id] = s
        return s

    async def stop(self, ref: str) -> None:
        """Stop S's containers and let go of its namespaces; stopping twice is fine."""
        s = self.get(ref)
        async with self.lock(s):
            for c in self.containers(s.id):
                if c.running:
                    with contextlib.suppress(NotModified, NotFound):
                        await self.engine.stop(c.id)
            await pins.unpin(s.pin_dir)
            if s.ready:
                s.state = NOTREADY
                await self.save(s)

    async def remove(self, ref: str) -> None:
        """Remove S, its containers (killed if running) and its namespaces; an unknown
        sandbox is already removed."""
        try:
            s = self.get(ref)
        except NotFound:
            return
        async with self.lock(s):
            if self.sandboxes.get(s.id) is not s:
                return
            for c in self.containers(s.id):
                with contextlib.suppress(NotFound):
                    await self.engine.remove(c.id, force=True)
            await pins.unpin(s.pin_dir)
            await asyncio.to_thread(self.store.delete, s.id)
            self.sandboxes.pop(s.id, None)
        self._locks.pop(s.id, None)

    # -- containers -------------------------------------------------------------

    def containers(self, sandbox_id: str | None = None) -> list[Container]:
        """The CRI containers (of sandbox SANDBOX_ID), oldest first."""
        found = [c for c in self.engine.containers.values()
                 if (m := meta_of(c)) is not None
                 and (sandbox_id is None or m.sandbox_id == sandbox_id)]
        return sorted(found, key=lambda c: c.created)

    def container(self, ref: str) -> tuple[Container, CriMeta]:
        """The CRI container REF; a container CRI did not make is not found."""
        c = self.engine.get(ref)
        meta = meta_of(c)
        if meta is None:
            raise NotFound(f"container {ref!r} not found")
        return c, meta

    async def create_container(self, sandbox_ref: str, cfg: ContainerConfig,
                               meta: CriMeta) -> Container:
        """An engine container for CFG in the sandbox's namespaces, slice and log
        directory, carrying META."""
        s = self.get(sandbox_ref)
        async with self.lock(s):
            if not s.ready:
                raise Conflict(f"pod sandbox {s.id[:12]} is not ready")
            meta = dataclasses.replace(meta, sandbox_id=s.id)
            if meta.log_path and s.log_directory:
                meta.log_path = os.path.join(s.log_directory, meta.log_path)
                await asyncio.to_thread(Path(meta.log_path).parent.mkdir, parents=True,
                                        exist_ok=True)
            elif meta.log_path and not meta.log_path.startswith("/"):
                raise InvalidArgument("log_path is relative and the pod has no log_directory")
            cfg = dataclasses.replace(
                cfg, network_mode=ns_mode(s, "net"), ipc_mode=ns_mode(s, "ipc"),
                uts_mode=ns_mode(s, "uts"), hostname=s.hostname if s.uts == "pod" else "",
                dns=list(s.dns_servers), dns_search=list(s.dns_searches),
                dns_options=list(s.dns_options), cgroup_parent=s.cgroup_parent,
                cri_log_path=meta.log_path, labels={**cfg.labels, **meta.labels_for_engine()})
            name = container_name(meta.name, s.name, s.namespace, s.id, meta.attempt)
            return await self.engine.create(cfg, name)

    async def start_container(self, ref: str) -> None:
        """Start CRI container REF, whose sandbox must be ready."""
        c, meta = self.container(ref)
        s = self.get(meta.sandbox_id)
        async with self.lock(s):
            if not s.ready:
                raise Conflict(f"pod sandbox {s.id[:12]} is not ready")
            await self.engine.start(c.id)

    async def stop_container(self, ref: str, timeout: int) -> None:
        """Stop REF (SIGKILL after TIMEOUT seconds); a stopped one is fine."""
        c, _ = self.container(ref)
        with contextlib.suppress(NotModified):
            await self.engine.stop(c.id, max(timeout, 0))

    async def remove_container(self, ref: str) -> None:
        """Remove REF, killing it if it runs; an unknown one is already removed."""
        try:
            c, _ = self.container(ref)
        except NotFound:
            return
        with contextlib.suppress(NotFound):
            await self.engine.remove(c.id, force=True)

    async def reopen_log(self, ref: str) -> None:
        """Have REF's supervisor reopen its CRI log file (after kubelet rotated it)."""
        c, meta = self.container(ref)
        if not meta.log_path:
            raise InvalidArgument(f"container {c.id[:12]} has no log path")
        if not c.running:
            raise Conflict(f"container {c.id[:12]} is not running")
        await self.engine.reopen_log(c.id)


def pinned_kinds(s: Sandbox) -> tuple[str, ...]:
    """The namespaces pinned for S (those not the host's)."""
    return tuple(kind for kind in pins.KINDS if getattr(s, kind) == "pod")


def ns_mode(s: Sandbox, kind: str) -> str:
    """A container's namespace mode in S: its pinned namespace, or the host's."""
    path = s.ns_path(kind)
    return f"ns:{path}" if path else "host"

