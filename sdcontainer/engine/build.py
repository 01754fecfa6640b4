"""Image builds, the engine's side: the context, and RUN steps as containers.

Each RUN is an ordinary container of the step's parent image, created and started
through `Engine.create`/`Engine.start`, so it gets the same launcher, seccomp
profile, capabilities and transient scope as `run`; its scope lives in its own slice
under sdcontainer.slice, named after the build.  Its upper directory becomes the
step's layer (images/build/builder.py); then it is removed, scope, slice and all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import LaunchError, SdcError
from ..images.build.builder import Builder, BuildFailed, BuildOptions, Emit, RunStep
from ..images.build.cache import PruneResult
from ..images.build.cache import prune as prune_cache
from ..images.build.context import unpack
from ..images.model import Image
from ..model.spec import ContainerConfig
from .core import Engine
from .records import Container, new_id

log = logging.getLogger(__name__)

BUILD_LABEL = "org.sdcontainer.build"


@dataclass
class StepRun:
    """A RUN step's container after its command exited."""

    engine: Engine
    container: Container
    exit_code: int

    @property
    def id(self) -> str:
        """The container's id."""
        return self.container.id

    @property
    def upper(self) -> Path:
        """Its overlay upper directory: what the command changed."""
        return self.container.dir / "upper"

    @property
    def id_shift(self) -> int:
        """The base of its user namespace's id range (0: none)."""
        return self.container.config.userns_base

    @property
    def mount_targets(self) -> list[str]:
        """Where its volumes and binds were mounted."""
        return [m.target for m in self.container.config.mounts]

    async def remove(self) -> None:
        """Remove the container: its record, directories, scope and slice."""
        with contextlib.suppress(SdcError):
            await self.engine.remove(self.container.id, force=True)


class StepRunner:
    """Runs the RUN steps of one build and removes whatever a failure leaves."""

    def __init__(self, engine: Engine, build_id: str) -> None:
        self.engine = engine
        self.build_id = build_id
        self.live: set[str] = set()
        self.runs = 0  # names the containers: ONBUILD triggers share a step number

    async def __call__(self, step: RunStep, output: Callable[[str], None]) -> StepRun:
        """Run STEP to its end, sending its output to OUTPUT as it comes."""
        self.runs += 1
        cfg = ContainerConfig(
            image=step.image_id, entrypoint=step.argv, cmd=[], env=step.env,
            working_dir=step.working_dir, user=step.user, memory=step.memory,
            nano_cpus=step.nano_cpus, network_mode=step.network_mode,
            add_hosts=step.extra_hosts, shm_size=step.shm_size,
            labels={BUILD_LABEL: self.build_id})
        c = await self.engine.create(cfg, f"build-{self.build_id[:12]}-{self.runs}")
        self.live.add(c.id)
        try:
            exited = self.engine.exit_future(c)
            streams = self.engine.attach_at_start(c, {"stdin": False, "stdout": True,
                                                      "stderr": True})
            output(f" ---> Running in {c.id[:12]}\n")
            try:
                await self.engine.start(c.id)
            except LaunchError as e:
                raise BuildFailed(f"step {step.step}: the command could not be started: {e}",
                                  e.exit_code) from None
            connected = await streams
            if connected is not None:
                await _pump(connected[0], output)
                connected[1].close()
            code = await asyncio.shield(exited)
        except BaseException:
            await self.discard(c.id)
            raise
        self.live.discard(c.id)
        return StepRun(self.engine, c, code)

    async def discard(self, cid: str) -> None:
        """Remove container CID (a step that failed or was cancelled)."""
        self.live.discard(cid)
        with contextlib.suppress(SdcError):
            await self.engine.remove(cid, force=True)

    async def cleanup(self) -> None:
        """Remove every step container still here."""
        for cid in list(self.live):
            await self.discard(cid)


async def _pump(reader: asyncio.StreamReader, output: Callable[[str], None]) -> None:
    """Docker's multiplexed frames from the monitor, as text."""
    while True:
        try:
            head = await reader.readexactly(8)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        kind, size = struct.unpack(">BxxxI", head)
        try:
            data = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        text = data.decode("utf-8", "replace")
        # dockerd's classic builder shows a step's stderr in red; clients expect it.
        output(f"\x1b[91m{text}\x1b[0m" if kind == 2 else text)


async def build(engine: Engine, context: BinaryIO, opts: BuildOptions, emit: Emit) -> Image:
    """Build an image from the context tar CONTEXT; progress goes to EMIT."""
    store = engine.images
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=store.root / "tmp",
                                        prefix="context-"))
    runner = StepRunner(engine, new_id())
    try:
        await asyncio.to_thread(unpack, context, work / "ctx", store.limits)
        builder = Builder(store, work / "ctx", opts, runner, emit)
        return await builder.build()
    finally:
        await asyncio.shield(runner.cleanup())
        await asyncio.to_thread(shutil.rmtree, work, True)


async def prune(engine: Engine, everything: bool = False) -> PruneResult:
    """Remove dangling build cache (or, with EVERYTHING, all of it) that no container
    uses."""
    keep = {c.config.image_id for c in engine.containers.values()}
    return await asyncio.to_thread(prune_cache, engine.images, keep, everything)
