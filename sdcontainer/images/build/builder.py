"""The classic builder's step loop: one Dockerfile instruction at a time.

Each step starts from the image the previous one produced, and produces an image
(hidden from `images` until tagged), as dockerd's classic builder does; that is
what the cache maps step keys to.  RUN is handed to a `StepRunner` (the engine runs
it as a container); everything else is file work here, in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...errors import ImageError, InvalidArgument, NoSuchImage, SdcError, Unsupported
from ...util.clock import now
from .. import mediatypes as mt
from ..layerdiff import LAUNCHER_MOUNT_POINTS, MergedTree, mount_points, write_layer
from ..model import Image
from ..reference import Reference, parse_reference
from ..store import ImageStore, host_arch
from . import context as ctxmod
from . import words
from .cache import BuildCache, prefix_of, step_key
from .copy import Owner, Stager, match
from .dockerfile import Dockerfile, Instruction, Stage, parse, parse_line

# Build args docker accepts without an ARG line (and keeps out of history).
PREDEFINED_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
DEFAULT_SHELL = ["/bin/sh", "-c"]
_FS_STEPS = {"RUN", "COPY", "ADD"}


class BuildFailed(SdcError):
    """A step failed; CODE is a RUN's exit status (docker's errorDetail.code)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BuildOptions:
    """What POST /build asked for."""

    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    cache_from: list[str] = field(default_factory=list)
    network_mode: str = ""
    extra_hosts: list[str] = field(default_factory=list)
    shm_size: int = 0
    memory: int = 0
    nano_cpus: int = 0
    platform: str = ""


@dataclass(frozen=True)
class RunStep:
    """One RUN, for the engine to run as a container of IMAGE_ID."""

    image_id: str
    argv: list[str]
    env: list[str]
    user: str
    working_dir: str
    network_mode: str
    memory: int
    nano_cpus: int
    extra_hosts: list[str]
    step: int
    shm_size: int = 0


class StepContainer(Protocol):
    """A RUN step's container, once its command has exited."""

    @property
    def id(self) -> str:
        """The container's id."""

    @property
    def exit_code(self) -> int:
        """Its command's exit status."""

    @property
    def upper(self) -> Path:
        """Its overlay upper directory."""

    @property
    def id_shift(self) -> int:
        """The base of its user namespace's ids (0: none)."""

    @property
    def mount_targets(self) -> list[str]:
        """Where its volumes and binds were mounted (mount points its layer leaves out)."""

    async def remove(self) -> None:
        """Remove the container and everything it left (scope, slice, directories)."""


StepRunner = Callable[[RunStep, Callable[[str], None]], Awaitable[StepContainer]]
"""Runs a step, sending its output to the callback as it comes."""

Emit = Callable[[dict[str, Any]], None]


@dataclass
class _State:
    """The image a stage has built so far."""

    image_id: str
    cfg: dict[str, Any]
    layers: list[mt.Descriptor]
    args: dict[str, str]  # ARGs in effect: name -> value
    stage: Stage
    cmd_set: bool = False  # a CMD in this stage (else ENTRYPOINT resets the inherited one)

    @property
    def config(self) -> dict[str, Any]:
        c: dict[str, Any] = self.cfg.setdefault("config", {})
        return c

    def env(self) -> dict[str, str]:
        out = dict(self.args)
        for e in self.config.get("Env") or []:
            k, _, v = e.partition("=")
            out[k] = v
        return out


def _set_env(cfg: dict[str, Any], key: str, value: str) -> None:
    env = [e for e in cfg.get("Env") or [] if e.partition("=")[0] != key]
    env.append(f"{key}={value}")
    cfg["Env"] = env


def _pairs(ins: Instruction, env: dict[str, str], escape: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: ``k=v ...`` or the legacy ``k v``."""
    ws = words.split(ins.rest, env, escape)
    if not ws:
        raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} requires arguments")
    if "=" not in ws[0]:
        key, _, value = ins.rest.partition(" ")
        if not value.strip():
            raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} {key} needs a value")
        return [(key, words.one(value.strip(), env, escape))]
    out = []
    for w in ws:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} names must be "
                                  f"key=value: {w!r}")
        out.append((key, value))
    return out


def _cmd_form(ins: Instruction, shell: list[str]) -> list[str]:
    return list(ins.json_args) if ins.json_args is not None else [*shell, ins.rest]


def _duration(value: str, line: int) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    import re

    units = {"ns": 1, "us": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if not parts or "".join(a + b for a, b in parts) != value:
        raise InvalidArgument(f"Dockerfile line {line}: invalid duration {value!r}")
    return int(sum(float(n) * units[u] for n, u in parts))


def apply_meta(cfg: dict[str, Any], ins: Instruction, env: dict[str, str], escape: str,
               *, inherited_cmd: bool = False) -> None:
    """Apply a metadata instruction (ENV, LABEL, CMD, ...) to image config CFG; ENV
    also updates ENV, the variables later instructions see.  Used by builds and by
    ``commit --change``."""
    c: dict[str, Any] = cfg.setdefault("config", {})
    shell = c.get("Shell") or DEFAULT_SHELL
    cmd = ins.cmd
    line = ins.line
    if cmd == "ENV":
        for k, v in _pairs(ins, env, escape):
            _set_env(c, k, v)
            env[k] = v
    elif cmd in ("LABEL", "MAINTAINER"):
        if cmd == "MAINTAINER":
            cfg["author"] = words.one(ins.rest, env, escape)
        else:
            labels = c.setdefault("Labels", {})
            for k, v in _pairs(ins, env, escape):
                labels[k] = v
    elif cmd == "WORKDIR":
        wd = words.one(ins.rest, env, escape)
        if not wd:
            raise InvalidArgument(f"Dockerfile line {line}: WORKDIR requires an argument")
        c["WorkingDir"] = posixpath.normpath(posixpath.join(c.get("WorkingDir") or "/", wd))
    elif cmd == "USER":
        user = words.one(ins.rest, env, escape)
        if not user:
            raise InvalidArgument(f"Dockerfile line {line}: USER requires an argument")
        c["User"] = user
    elif cmd == "CMD":
        c["Cmd"] = _cmd_form(ins, shell)
    elif cmd == "ENTRYPOINT":
        if ins.rest:
            c["Entrypoint"] = _cmd_form(ins, shell)
        else:
            c.pop("Entrypoint", None)
        if inherited_cmd:
            # A new ENTRYPOINT drops the CMD the base image had, as docker does.
            c.pop("Cmd", None)
    elif cmd == "EXPOSE":
        ports = c.setdefault("ExposedPorts", {})
        for p in words.split(ins.rest, env, escape):
            port, _, proto = p.partition("/")
            if not port.replace("-", "").isdigit():
                raise InvalidArgument(f"Dockerfile line {line}: invalid port {p!r}")
            ports[f"{port}/{(proto or 'tcp').lower()}"] = {}
    elif cmd == "VOLUME":
        vols = ins.json_args if ins.json_args is not None else \
            words.split(ins.rest, env, escape)
        if not vols:
            raise InvalidArgument(f"Dockerfile line {line}: VOLUME requires an argument")
        c.setdefault("Volumes", {}).update({v: {} for v in vols})
    elif cmd == "STOPSIGNAL":
        sig = words.one(ins.rest, env, escape)
        from ...util.signals import parse_signal

        parse_signal(sig)
        c["StopSignal"] = sig
    elif cmd == "SHELL":
        if ins.json_args is None or not ins.json_args:
            raise InvalidArgument(f"Dockerfile line {line}: SHELL requires the arguments "
                                  "to be in JSON form")
        c["Shell"] = ins.json_args
    elif cmd == "ONBUILD":
        trigger = parse_line(ins.rest, line)
        if trigger.cmd in ("ONBUILD", "FROM", "MAINTAINER"):
            raise InvalidArgument(f"Dockerfile line {line}: {trigger.cmd} isn't allowed "
                                  "as an ONBUILD trigger")
        c.setdefault("OnBuild", []).append(ins.rest)
    elif cmd == "HEALTHCHECK":
        c["Healthcheck"] = _healthcheck(ins)
    else:
        raise Unsupported(f"Dockerfile line {line}: {cmd} is not supported")


def _healthcheck(ins: Instruction) -> dict[str, Any]:
    word, _, rest = ins.rest.partition(" ")
    if word.upper() == "NONE":
        return {"Test": ["NONE"]}
    if word.upper() != "CMD":
        raise InvalidArgument(f"Dockerfile line {ins.line}: HEALTHCHECK wants CMD or NONE")
    rest = rest.strip()
    sub = parse_line("CMD " + rest, ins.line)
    test = ["CMD", *sub.json_args] if sub.json_args is not None else ["CMD-SHELL", rest]
    hc: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in ins.flags:
            hc[key] = _duration(ins.flags[flag], ins.line)
    if "retries" in ins.flags:
        if not ins.flags["retries"].isdigit():
            raise InvalidArgument(f"Dockerfile line {ins.line}: invalid --retries")
        hc["Retries"] = int(ins.flags["retries"])
    return hc



class Builder:
    """One build: the Dockerfile, the unpacked context, and where results go."""

    def __init__(self, store: ImageStore, context_dir: Path, opts: BuildOptions,
                 runner: StepRunner, emit: Emit) -> None:
        self.store = store
        self.ctx = context_dir
        self.opts = opts
        self.runner = runner
        self.emit = emit
        self.cache = BuildCache(store.root)
        self.stages: dict[int, _State] = {}
        self.used_args: set[str] = set()
        self._sources: list[Image] | None = None

    def say(self, text: str) -> None:
        """A line of the progress stream."""
        self.emit({"stream": text})

    # -- set-up ------------------------------------------------------------------

    def load_dockerfile(self) -> Dockerfile:
        """Read and parse the Dockerfile from the context, then apply .dockerignore."""
        name = posixpath.normpath(self.opts.dockerfile or "Dockerfile").lstrip("/")
        if name.startswith("../"):
            raise InvalidArgument(f"the Dockerfile ({name}) must be within the build context")
        path = self.ctx / name
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}") from None
        except (IsADirectoryError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"cannot read the Dockerfile {name}: {e}") from None
        ignore_file = self.ctx / ".dockerignore"
        if ignore_file.is_file():
            ctxmod.apply_ignore(self.ctx, ctxmod.Ignore(ignore_file.read_text()))
        return parse(text)

    # -- the build -------------------------------------------------------------

    async def build(self) -> Image:
        """Run every step needed for the target stage; tag and return the final image."""
        df = await asyncio.to_thread(self.load_dockerfile)
        if self.opts.platform:
            self._check_platform(self.opts.platform)
        last = df.stage_index(self.opts.target) if self.opts.target else len(df.stages) - 1
        needed = self._needed_stages(df, last)
        total = sum(1 + len(s.instructions) for s in df.stages if s.index in needed)
        global_args = self._global_args(df)
        step = 0
        final: _State | None = None
        for stage in df.stages:
            if stage.index not in needed:
                continue
            step += 1
            self.say(f"Step {step}/{total} : FROM {stage.base}"
                     + (f" AS {stage.name}" if stage.name else "") + "\n")
            state = await self._from(stage, global_args, df.escape)
            self.say(f" ---> {_short(state.image_id)}\n")
            for ins in stage.instructions:
                step += 1
                self.say(f"Step {step}/{total} : {ins.original}\n")
                state = await self._step(state, ins, df, step)
                self.say(f" ---> {_short(state.image_id)}\n")
            self.stages[stage.index] = state
            final = state
        assert final is not None
        unused = sorted(set(self.opts.build_args) - self.used_args - PREDEFINED_ARGS)
        if unused:
            self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not "
                     "consumed\n")
        final = await self._final_labels(final)
        return await asyncio.to_thread(self._finish, final)

    def _check_platform(self, value: str) -> None:
        from ..pull import parse_platform

        os_name, arch, _ = parse_platform(value)
        if (os_name, arch) != ("linux", host_arch()):
            raise Unsupported(f"platform {value} cannot be built on this linux/{host_arch()} "
                              "host (no emulation)")

    def _needed_stages(self, df: Dockerfile, last: int) -> set[int]:
        """LAST and the stages it copies from or builds on, as the classic builder runs
        every stage up to the target; we skip those nothing needs, like BuildKit."""
        names = {s.name.lower(): s.index for s in df.stages if s.name}
        needed: set[int] = set()
        todo = [last]
        while todo:
            i = todo.pop()
            if i in needed:
                continue
            needed.add(i)
            s = df.stages[i]
            if s.base.lower() in names and names[s.base.lower()] < i:
                todo.append(names[s.base.lower()])
            for ins in s.instructions:
                src = ins.flags.get("from", "")
                if src.lower() in names:
                    todo.append(names[src.lower()])
                elif src.isdigit() and int(src) < i:
                    todo.append(int(src))
        return needed

    def _global_args(self, df: Dockerfile) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in df.global_args:
            for name, value in self._arg_defs(ins, out, df.escape):
                out[name] = self.opts.build_args.get(name, value or "")
                if name in self.opts.build_args:
                    self.used_args.add(name)
        return out

    def _arg_defs(self, ins: Instruction, env: dict[str, str],
                  escape: str) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for w in words.split(ins.rest, env, escape):
            name, eq, value = w.partition("=")
            if not name:
                raise InvalidArgument(f"Dockerfile line {ins.line}: ARG needs a name")
            out.append((name, value if eq else None))
        if not out:
            raise InvalidArgument(f"Dockerfile line {ins.line}: ARG requires an argument")
        return out

    async def _from(self, stage: Stage, global_args: dict[str, str], escape: str) -> _State:
        base = words.one(stage.base, global_args, escape)
        platform = words.one(stage.platform, global_args, escape) if stage.platform else ""
        if platform:
            self._check_platform(platform)
        for prev in self.stages.values():
            if prev.stage.name and prev.stage.name.lower() == base.lower():
                return _State(prev.image_id, copy.deepcopy(prev.cfg), list(prev.layers), {},
                              stage)
        if base == "scratch":
            cfg: dict[str, Any] = {
                "architecture": host_arch(), "os": "linux", "config": {},
                "rootfs": {"type": "layers", "diff_ids": []}, "history": [],
                "created": "1970-01-01T00:00:00Z"}
            img = await asyncio.to_thread(self.store.add_config_image, cfg, [], hidden=True)
            return _State(img.id, cfg, [], {}, stage)
        img = await self._base_image(base, platform or self.opts.platform)
        cfg = copy.deepcopy(img.raw_config)
        cfg.pop("container_config", None)
        cfg.pop("container", None)
        layers = await asyncio.to_thread(self.store.layer_descriptors, img)
        state = _State(img.id, cfg, layers, {}, stage)
        for trigger in state.config.pop("OnBuild", None) or []:
            # Triggers run once, in the stage that builds FROM the image.
            self.say(f"# Executing 1 build trigger: {trigger}\n")
            state = await self._step(state, parse_line(trigger, stage.line), None, 0)
        return state

    async def _base_image(self, base: str, platform: str) -> Image:
        """FROM's image: the local one, or pulled when missing or when asked to (pull=1)."""
        from ..pull import pull

        local: Image | None = None
        with contextlib.suppress(NoSuchImage):
            local = await asyncio.to_thread(self.store.resolve, base)
        if local is not None and not self.opts.pull:
            return local
        self.say(f"Pulling {base}\n")
        try:
            return await asyncio.to_thread(pull, self.store, base, platform=platform or None)
        except SdcError as e:
            if local is None:
                raise NoSuchImage(f"FROM {base}: not in the local store, and pulling it "
                                  f"failed: {e}") from None
            self.say(f"[Warning] pulling {base} failed ({e}); using the local image\n")
            return local

    # -- one step ------------------------------------------------------------------

    async def _step(self, st: _State, ins: Instruction, df: Dockerfile | None,
                    step: int) -> _State:
        escape = df.escape if df else "\\"
        env = st.env()
        if ins.cmd == "ARG":
            return self._arg(st, ins, df, escape)
        if ins.cmd in _FS_STEPS:
            return await self._fs_step(st, ins, env, escape, step)
        return await self._meta_step(st, ins, env, escape)

    def _arg(self, st: _State, ins: Instruction, df: Dockerfile | None, escape: str) -> _State:
        globals_ = self._global_args(df) if df else {}
        for name, default in self._arg_defs(ins, st.env(), escape):
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
                self.used_args.add(name)
            elif default is not None:
                value = default
            else:
                value = globals_.get(name, "")
                if name not in globals_:
                    continue  # declared without a value: unset, as with docker
            st.args[name] = value
        return st

    async def _meta_step(self, st: _State, ins: Instruction, env: dict[str, str],
                         escape: str) -> _State:
        cfg = copy.deepcopy(st.cfg)
        apply_meta(cfg, ins, env, escape, inherited_cmd=not st.cmd_set)
        if ins.cmd == "CMD":
            st.cmd_set = True
        c = cfg.get("config", {})
        created_by = f"/bin/sh -c #(nop)  {ins.original}"
        key = step_key(st.image_id, ins.cmd + " " + json.dumps(c, sort_keys=True), st.args)
        return await self._commit_or_cache(st, cfg, key, created_by, None)

    async def _fs_step(self, st: _State, ins: Instruction, env: dict[str, str],
                       escape: str, step: int) -> _State:
        if ins.cmd == "RUN":
            shell = st.config.get("Shell") or DEFAULT_SHELL
            argv = _cmd_form(ins, shell)
            if not ins.rest:
                raise InvalidArgument(f"Dockerfile line {ins.line}: RUN requires an argument")
            arg_words = [f"{k}={v}" for k, v in sorted(st.args.items())
                         if k not in PREDEFINED_ARGS]
            created_by = " ".join(argv)
            if arg_words:
                created_by = f"|{len(arg_words)} {' '.join(arg_words)} {created_by}"
            key = step_key(st.image_id, "RUN " + json.dumps(argv), st.args)
            cached = await asyncio.to_thread(self._cached, key, st, st.cfg, created_by, True)
            if cached is not None:
                return await self._use_cache(st, cached)
            return await self._run(st, ins, argv, created_by, key, step)
        return await self._copy(st, ins, env, escape)

    def _cached(self, key: str, st: _State, cfg: dict[str, Any], created_by: str,
                layer: bool) -> str | None:
        """The image of a step already done: from the local cache or, with
        `cachefrom`, made from a listed image whose history has this step next."""
        if self.opts.no_cache:
            return None
        image_id = self.cache.get(key)
        img = None
        if image_id is not None:
            with contextlib.suppress(NoSuchImage, ImageError):
                img = self.store.resolve(image_id)
        if not self.opts.cache_from:
            return img.id if img is not None else None
        if img is not None and any(prefix_of(img.raw_config, src.raw_config)
                                   for src in self._cache_sources()):
            return img.id
        return self._restore(key, st, cfg, created_by, layer)

    def _cache_sources(self) -> list[Image]:
        """The `cachefrom` images that exist (the others are ignored, as dockerd does)."""
        if self._sources is None:
            self._sources = []
            for ref in self.opts.cache_from:
                with contextlib.suppress(NoSuchImage, ImageError, InvalidArgument):
                    self._sources.append(self.store.resolve(ref))
        return self._sources

    def _restore(self, key: str, st: _State, cfg: dict[str, Any], created_by: str,
                 layer: bool) -> str | None:
        """The step's image made from a `cachefrom` image built on the same parent
        whose next history entry is this step (as dockerd does for images pulled or
        loaded from elsewhere): CFG, that entry, and its layer if the step makes one."""
        hist = list(st.cfg.get("history") or [])
        ids = list(st.cfg.get("rootfs", {}).get("diff_ids", []))
        for src in self._cache_sources():
            src_hist = src.raw_config.get("history") or []
            if len(src_hist) <= len(hist) or not prefix_of(st.cfg, src.raw_config):
                continue
            entry = src_hist[len(hist)]
            if entry.get("created_by") != created_by or bool(entry.get("empty_layer")) == layer:
                continue
            new = copy.deepcopy(cfg)
            new["created"] = entry.get("created", new.get("created"))
            new["history"] = [*hist, entry]
            layers = list(st.layers)
            if layer:
                src_ids = src.raw_config.get("rootfs", {}).get("diff_ids", [])
                descs = self.store.layer_descriptors(src)
                if len(ids) >= min(len(src_ids), len(descs)):
                    continue
                new.setdefault("rootfs", {"type": "layers"})["diff_ids"] = \
                    [*ids, src_ids[len(ids)]]
                layers.append(descs[len(ids)])
            with self.store.ingesting():
                img = self.store.add_config_image(new, layers, hidden=True,
                                                  parent=st.image_id)
            self.cache.put(key, img.id)
            return img.id
        return None

    async def _use_cache(self, st: _State, image_id: str) -> _State:
        self.say(" ---> Using cache\n")
        img = await asyncio.to_thread(self.store.resolve, image_id)
        layers = await asyncio.to_thread(self.store.layer_descriptors, img)
        return _State(img.id, copy.deepcopy(img.raw_config), layers, st.args, st.stage)

    async def _commit_or_cache(self, st: _State, cfg: dict[str, Any], key: str,
                               created_by: str, layer: Path | None) -> _State:
        cached = await asyncio.to_thread(self._cached, key, st, cfg, created_by, False) \
            if layer is None else None
        if cached is not None:
            return await self._use_cache(st, cached)
        return await asyncio.to_thread(self._commit, st, cfg, key, created_by, layer)

    def _commit(self, st: _State, cfg: dict[str, Any], key: str, created_by: str,
                layer: Path | None) -> _State:
        cfg = copy.deepcopy(cfg)
        when = now()
        cfg["created"] = when
        hist: dict[str, Any] = {"created": when, "created_by": created_by}
        layers = list(st.layers)
        with self.store.ingesting():
            if layer is not None:
                with open(layer, "rb") as f:
                    desc, diff_id = self.store.add_layer(f)
                layers.append(desc)
                cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
                cfg["rootfs"]["diff_ids"] = [*cfg["rootfs"].get("diff_ids", []), diff_id]
            else:
                hist["empty_layer"] = True
            cfg["history"] = [*cfg.get("history", []), hist]
            img = self.store.add_config_image(cfg, layers, hidden=True, parent=st.image_id)
        self.cache.put(key, img.id)
        return _State(img.id, cfg, layers, st.args, st.stage)

    def _tmpdir(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.store.root / "tmp", prefix="build-"))

    def _layer_from(self, root: Path, work: Path, id_shift: int = 0,
                    skip: frozenset[str] = frozenset()) -> Path:
        clamp = self.opts.build_args.get("SOURCE_DATE_EPOCH")
        tar = work / "layer.tar"
        with open(tar, "wb") as f:
            write_layer(root, f, id_shift=id_shift, skip=skip,
                        clamp_mtime=int(clamp) if clamp and clamp.isdigit() else None)
        return tar

    def _step_layer(self, st: _State, ctr: StepContainer, work: Path) -> Path:
        """A RUN container's upper directory as a layer, without the launcher's mount
        points."""
        img = self.store.resolve(st.image_id)
        skip = mount_points(ctr.upper, MergedTree(img.layers),
                            [*LAUNCHER_MOUNT_POINTS, *ctr.mount_targets])
        return self._layer_from(ctr.upper, work, ctr.id_shift, skip)

    async def _run(self, st: _State, ins: Instruction, argv: list[str], created_by: str,
                   key: str, step: int) -> _State:
        c = st.config
        env = list(c.get("Env") or [])
        have = {e.partition("=")[0] for e in env}
        env += [f"{k}={v}" for k, v in sorted(st.args.items()) if k not in have]
        run = RunStep(image_id=st.image_id, argv=argv, env=env, user=c.get("User") or "",
                      working_dir=c.get("WorkingDir") or "/",
                      network_mode=self.opts.network_mode, memory=self.opts.memory,
                      nano_cpus=self.opts.nano_cpus, extra_hosts=self.opts.extra_hosts,
                      step=step, shm_size=self.opts.shm_size)
        ctr = await self.runner(run, lambda text: self.emit({"stream": text}))
        work = await asyncio.to_thread(self._tmpdir)
        try:
            if ctr.exit_code != 0:
                raise BuildFailed(f"The command '{' '.join(argv)}' returned a non-zero code: "
                                  f"{ctr.exit_code}", ctr.exit_code)
            tar = await asyncio.to_thread(self._step_layer, st, ctr, work)
            new = await asyncio.to_thread(self._commit, st, st.cfg, key, created_by, tar)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
            failed = ctr.exit_code != 0
            if self.opts.remove or self.opts.force_remove or failed:
                # A failed step's container goes too (docker keeps it unless forcerm):
                # a failed build leaves nothing behind.
                self.say(f"Removing intermediate container {ctr.id[:12]}\n")
                await ctr.remove()
        return new

    async def _copy(self, st: _State, ins: Instruction, env: dict[str, str],
                    escape: str) -> _State:
        if ins.json_args is not None:
            args = [words.one(a, env, escape) if "$" in a else a for a in ins.json_args]
        else:
            args = words.split(ins.rest, env, escape)
        if len(args) < 2:
            raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} requires at least "
                                  "two arguments")
        *srcs, dest = args
        src_tree = await self._source_tree(ins, env, escape)
        work = await asyncio.to_thread(self._tmpdir)
        try:
            return await self._copy_in(st, ins, env, escape, srcs, dest, src_tree, work)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _source_tree(self, ins: Instruction, env: dict[str, str],
                           escape: str) -> MergedTree:
        src = words.one(ins.flags.get("from", ""), env, escape)
        if not src:
            return MergedTree([self.ctx])
        for i, prev in self.stages.items():
            if (prev.stage.name and prev.stage.name.lower() == src.lower()) or src == str(i):
                img = await asyncio.to_thread(self.store.resolve, prev.image_id)
                return MergedTree(img.layers)
        try:
            img = await asyncio.to_thread(self.store.resolve, src)
        except NoSuchImage:
            raise InvalidArgument(f"Dockerfile line {ins.line}: COPY --from={src}: no such "
                                  "stage or image") from None
        return MergedTree(img.layers)

    async def _copy_in(self, st: _State, ins: Instruction, env: dict[str, str], escape: str,
                       srcs: list[str], dest: str, tree: MergedTree, work: Path) -> _State:
        img = await asyncio.to_thread(self.store.resolve, st.image_id)
        image_tree = MergedTree(img.layers)
        owner = await asyncio.to_thread(self._owner, ins, env, escape, image_tree)
        mode = None
        if "chmod" in ins.flags:
            try:
                mode = int(ins.flags["chmod"], 8)
            except ValueError:
                raise InvalidArgument(f"Dockerfile line {ins.line}: invalid --chmod "
                                      f"{ins.flags['chmod']!r}") from None
        if owner is None and "from" not in ins.flags:
            owner = Owner(0, 0)
        workdir = st.config.get("WorkingDir") or "/"
        dest_abs = posixpath.join(workdir, dest)
        if dest.endswith("/") or dest in (".", ".."):
            dest_abs += "/"

        def stage() -> tuple[Path, str]:
            matches: list[str] = []
            for s in srcs:
                if s.startswith(("http://", "https://", "git@")):
                    raise Unsupported(f"Dockerfile line {ins.line}: {ins.cmd} from a URL is "
                                      "not supported (no network access at build time); "
                                      "download it into the context")
                rel = posixpath.normpath("/" + s).lstrip("/")
                found = match(tree, rel)
                if not found and not any(c in s for c in "*?["):
                    raise InvalidArgument(
                        f"Dockerfile line {ins.line}: {ins.cmd} failed: file not found in "
                        f"build context or excluded by .dockerignore: stat {s}: file does "
                        "not exist")
                matches += found
            if not matches:
                raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} failed: no "
                                      "source files were specified")
            if len(matches) > 1 and not dest_abs.endswith("/"):
                raise InvalidArgument(f"Dockerfile line {ins.line}: When using {ins.cmd} with "
                                      "more than one source file, the destination must be a "
                                      "directory and end with a /")
            stager = Stager(work / "stage", image_tree)
            hits = [(m, tree.lookup(m)) for m in matches]
            digest = ctxmod.checksum([(m, Path(hit[0])) for m, hit in hits if hit is not None])
            into = dest_abs.endswith("/") or stager.is_dir(dest_abs)
            for m in matches:
                hit = tree.lookup(m)
                if ins.cmd == "ADD" and hit and os.path.isfile(hit[0]) and \
                        not os.path.islink(hit[0]) and \
                        stager.extract(hit[0], dest_abs, owner, self.store.limits):
                    continue
                stager.copy(tree, m, dest_abs, into_dir=into, owner=owner, mode=mode)
            return work / "stage", digest

        staged, digest = await asyncio.to_thread(stage)
        created_by = f"/bin/sh -c #(nop) {ins.cmd} {digest.split(':')[1][:12]} in {dest_abs} "
        key = step_key(st.image_id, f"{ins.cmd} {json.dumps(ins.flags, sort_keys=True)} "
                       f"{dest_abs}", st.args, digest)
        cached = await asyncio.to_thread(self._cached, key, st, st.cfg, created_by, True)
        if cached is not None:
            return await self._use_cache(st, cached)
        tar = await asyncio.to_thread(self._layer_from, staged, work)
        return await asyncio.to_thread(self._commit, st, st.cfg, key, created_by, tar)

    def _owner(self, ins: Instruction, env: dict[str, str], escape: str,
               image: MergedTree) -> Owner | None:
        spec = ins.flags.get("chown")
        if not spec:
            return None
        spec = words.one(spec, env, escape)
        user, _, group = spec.partition(":")
        uid = _lookup_id(image, "etc/passwd", user, ins.line)
        gid = _lookup_id(image, "etc/group", group, ins.line) if group else uid
        if not group and not user.isdigit():
            gid = _primary_gid(image, user)
        return Owner(uid, gid)

    # -- the end -----------------------------------------------------------------

    async def _final_labels(self, st: _State) -> _State:
        """The request's labels, as one more (cached) metadata step, as docker adds them."""
        if not self.opts.labels:
            return st
        cfg = copy.deepcopy(st.cfg)
        cfg.setdefault("config", {}).setdefault("Labels", {}).update(self.opts.labels)
        text = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in
                                   sorted(self.opts.labels.items()))
        key = step_key(st.image_id, text, st.args)
        return await self._commit_or_cache(st, cfg, key, f"/bin/sh -c #(nop)  {text}", None)

    def _finish(self, st: _State) -> Image:
        """Tag the last step's image: a fully cached build gives the same image again."""
        tags: list[Reference] = []
        for t in self.opts.tags:
            ref = parse_reference(t, self.store.config.default)
            if ref.digest is not None:
                raise InvalidArgument(f"invalid tag {t!r}: a digest cannot be a tag")
            tags.append(ref)
        last = self.store.resolve(st.image_id)
        with self.store.ingesting():
            img = self.store.add_image(self.store.read_blob(last.manifest_digest), tags=tags)
        self.emit({"aux": {"ID": img.id}})
        self.say(f"Successfully built {_short(img.id)}\n")
        for ref in tags:
            self.say(f"Successfully tagged {ref.familiar()}\n")
        return img


def _passwd_lines(image: MergedTree, path: str) -> list[list[str]]:
    found = image.lookup(image.resolve(path))
    if found is None:
        return []
    with contextlib.suppress(OSError), open(found[0], encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n").split(":") for line in f]
    return []


def _lookup_id(image: MergedTree, path: str, name: str, line: int) -> int:
    if name.isdigit():
        return int(name)
    for fields in _passwd_lines(image, path):
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    raise InvalidArgument(f"Dockerfile line {line}: unable to find {name!r} in /{path} of "
                          "the image")


def _primary_gid(image: MergedTree, user: str) -> int:
    for fields in _passwd_lines(image, "etc/passwd"):
        if len(fields) > 3 and fields[0] == user and fields[3].isdigit():
            return int(fields[3])
    return 0


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
