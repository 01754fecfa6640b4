"""Named volumes: docker's `local` driver, under STATE_DIR/volumes/NAME.

Each volume is a directory holding `volume.json` (its record) and `_data` (what
containers see).  A volume with mount options (`type`, `o`, `device`: a tmpfs, a
bind of a host directory, any filesystem mount(2) can make) has them mounted on
`_data` in the host's mount namespace when a container first needs it, and
unmounted when the volume is removed.  Containers reach `_data` through the
launcher's bind path (runtime/launcher/mounts.py), as bind mounts do.

Whether a volume is in use is asked of the engine's containers: a volume named
in any container's mounts, running or not, is in use.  Methods here block
(disk, mount(2)): the engine calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import Conflict, InvalidArgument, NotFound, SdcError
from ..model.spec import MountSpec, from_dict
from ..runtime import syscalls as sc
from ..util import fileio
from ..util.clock import now
from .records import Container

log = logging.getLogger(__name__)

VOLUMES_DIR = paths.STATE_DIR / "volumes"
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
LOCAL_OPTIONS = ("type", "o", "device")

# mount(8) words of `o=` that are flags, not filesystem data.
MOUNT_FLAGS = {
    "ro": (sc.MS_RDONLY, True), "rw": (sc.MS_RDONLY, False),
    "nosuid": (sc.MS_NOSUID, True), "suid": (sc.MS_NOSUID, False),
    "nodev": (sc.MS_NODEV, True), "dev": (sc.MS_NODEV, False),
    "noexec": (sc.MS_NOEXEC, True), "exec": (sc.MS_NOEXEC, False),
    "bind": (sc.MS_BIND, True), "rbind": (sc.MS_BIND | sc.MS_REC, True),
    "sync": (0x10, True), "async": (0x10, False), "dirsync": (0x80, True),
    "noatime": (0x400, True), "atime": (0x400, False),
    "nodiratime": (0x800, True), "diratime": (0x800, False),
    "relatime": (0x200000, True), "norelatime": (0x200000, False),
    "strictatime": (sc.MS_STRICTATIME, True),
}


@dataclass(frozen=True)
class LocalMount:
    """What mount(2) is asked to put on a volume's _data."""

    fstype: str | None
    device: str
    flags: int
    data: str


def parse_options(options: dict[str, str]) -> LocalMount | None:
    """The `local` driver's options as a mount, or None for a plain directory."""
    for key in options:
        if key not in LOCAL_OPTIONS:
            raise InvalidArgument(f"invalid option key: {key!r} (the local driver takes "
                                  f"{', '.join(LOCAL_OPTIONS)})")
    if not options:
        return None
    fstype = options.get("type", "")
    flags, data = 0, []
    for word in (w for w in options.get("o", "").split(",") if w):
        if word in MOUNT_FLAGS:
            bits, on = MOUNT_FLAGS[word]
            flags = flags | bits if on else flags & ~bits
        else:
            data.append(word)
    device = options.get("device", "") or (fstype if fstype == "tmpfs" else "")
    if not device:
        raise InvalidArgument("missing required option: device")
    if flags & sc.MS_BIND:
        if not os.path.isabs(device) or not os.path.isdir(device):
            raise InvalidArgument(f"invalid device for a bind volume: {device}: "
                                  "not an existing absolute directory")
    elif not fstype:
        raise InvalidArgument("missing required option: type (or o=bind)")
    return LocalMount(fstype if fstype and fstype != "none" else None, device, flags,
                      ",".join(data))


@dataclass
class Volume:
    """A volume record."""

    name: str
    created_at: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False

    def dir(self, root: Path) -> Path:
        """Its directory under ROOT."""
        return root / self.name

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class VolumeFilter:
    """GET /volumes?filters=..., checked."""

    names: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    drivers: tuple[str, ...] = ()
    dangling: bool | None = None


def users(name: str, containers: Iterable[Container]) -> list[str]:
    """Ids of the containers, running or not, whose mounts name volume NAME."""
    return [c.id for c in containers
            if any(m.type == "volume" and m.name == name for m in c.config.mounts)]


def has_labels(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    """Whether LABELS has every KEY or KEY=VALUE of WANTED."""
    for w in wanted:
        key, eq, value = w.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


class VolumeStore:
    """Every volume on this host."""

    def __init__(self, root: Path = VOLUMES_DIR) -> None:
        self.root = root
        self._lock = threading.Lock()

    def mountpoint(self, v: Volume) -> Path:
        """Where containers' mounts of V come from."""
        return v.dir(self.root) / "_data"

    # -- records ------------------------------------------------------------------

    def _load(self, name: str) -> Volume | None:
        try:
            data = json.loads((self.root / name / "volume.json").read_text())
            return from_dict(Volume, data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            log.error("volume %s: unreadable record: %s", name, e)
            return None

    def get(self, name: str) -> Volume:
        """Volume NAME, or NotFound in docker's words."""
        v = self._load(name) if NAME_RE.fullmatch(name) else None
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def all(self) -> list[Volume]:
        """Every volume, by name."""
        if not self.root.is_dir():
            return []
        found = (self._load(d.name) for d in sorted(self.root.iterdir()) if d.is_dir())
        return [v for v in found if v is not None]

    def create(self, name: str | None, driver: str = "local", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, anonymous: bool = False) -> Volume:
        """Volume NAME (a fresh 64-hex name if None), made if it does not exist; an
        existing one is returned as it is, as docker does."""
        driver = driver or "local"
        if driver != "local":
            raise InvalidArgument(f"volume driver {driver!r} is not supported (local is)")
        if name is None:
            name = secrets.token_hex(32)
        elif not NAME_RE.fullmatch(name):
            raise InvalidArgument(
                f'create {name}: "{name}" includes invalid characters for a local volume '
                'name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass '
                "a host directory, use absolute path")
        parse_options(options or {})
        with self._lock:
            existing = self._load(name)
            if existing is not None:
                return existing
            v = Volume(name=name, created_at=now(), labels=dict(labels or {}),
                       options=dict(options or {}), anonymous=anonymous)
            d = v.dir(self.root)
            try:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o701)
                d.mkdir(mode=0o701)
                # A container's root sees its volume's _data as the mounted directory's
                # own mode: 0755 root, as docker makes it.
                self.mountpoint(v).mkdir(mode=0o755)
                fileio.write_json_atomic(d / "volume.json", v.to_json())
            except OSError as e:
                shutil.rmtree(d, ignore_errors=True)
                raise SdcError(f"create {name}: {e.strerror}") from e
        return v

    def select(self, f: VolumeFilter, containers: Iterable[Container]) -> list[Volume]:
        """The volumes F lets through (name substrings, labels, driver, dangling)."""
        containers = list(containers)
        out = []
        for v in self.all():
            if f.names and not any(n in v.name for n in f.names):
                continue
            if f.drivers and v.driver not in f.drivers:
                continue
            if not has_labels(v.labels, f.labels):
                continue
            if f.dangling is not None and f.dangling == bool(users(v.name, containers)):
                continue
            out.append(v)
        return out

    # -- mounts -------------------------------------------------------------------

    def _mounted(self, path: Path) -> bool:
        target = os.fsencode(str(path))
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                point = line.split(b" ")[4]
                # mountinfo escapes space, tab, newline and backslash in octal.
                point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), point)
                if point == target:
                    return True
        return False

    def ensure_mounted(self, name: str) -> None:
        """Mount volume NAME's options on its _data unless they already are."""
        v = self.get(name)
        local = parse_options(v.options)
        if local is None:
            return
        with self._lock:
            target = self.mountpoint(v)
            if self._mounted(target):
                return
            try:
                sc.mount(local.device, str(target), local.fstype, local.flags,
                         local.data or None)
                if local.flags & sc.MS_BIND and local.flags & sc.MS_RDONLY:
                    sc.mount(None, str(target), None,
                             sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)
            except OSError as e:
                raise SdcError(f"error while mounting volume '{target}': {e}") from e

    def prepare(self, mounts: Iterable[MountSpec]) -> None:
        """Mount every volume among MOUNTS that needs it (before a container starts), and
        check that each subpath exists inside its volume."""
        for m in mounts:
            if m.type == "volume":
                self.ensure_mounted(m.name)
                if m.subpath:
                    self.check_subpath(m)

    def check_subpath(self, m: MountSpec) -> None:
        """Refuse a subpath that is missing or leaves its volume through a symlink: a
        container writes the volume, and the bind mount would follow a link to the host.
        (Checked at start, as dockerd does; a container swapping a directory for a link in
        the instant before the launcher mounts it is not covered.)"""
        root = os.path.realpath(self.mountpoint(self.get(m.name)))
        real = os.path.realpath(m.source)
        if os.path.commonpath([root, real]) != root:
            raise InvalidArgument(f"cannot access path {m.subpath!r} of volume {m.name}: it "
                                  "leaves the volume")
        if not os.path.exists(real):
            raise InvalidArgument(f"cannot access path {m.subpath!r} of volume {m.name}: no "
                                  "such file or directory")

    # -- removal ------------------------------------------------------------------

    def remove(self, name: str, containers: Iterable[Container], force: bool = False) -> int:
        """Remove volume NAME unless a container uses it; its size in bytes.  FORCE
        makes a missing volume no error (the in-use rule stays, as with docker)."""
        try:
            v = self.get(name)
        except NotFound:
            if force:
                return 0
            raise
        using = users(v.name, containers)
        if using:
            raise Conflict(f"remove {v.name}: volume is in use - [{', '.join(using)}]")
        with self._lock:
            d = v.dir(self.root)
            target = self.mountpoint(v)
            size = tree_size(target)
            while self._mounted(target):
                try:
                    sc.umount(str(target), sc.MNT_DETACH)
                except OSError as e:
                    raise SdcError(f"remove {v.name}: cannot unmount {target}: {e}") from e
            # The record goes first: a crash part-way leaves no record for a half
            # deleted directory (collect_leftovers removes the rest).
            with contextlib.suppress(FileNotFoundError):
                (d / "volume.json").unlink()
            shutil.rmtree(d, ignore_errors=True)
        return size

    def remove_anonymous(self, c: Container, containers: Iterable[Container]) -> None:
        """`rm -v`: remove C's anonymous volumes that no other container uses."""
        others = [o for o in containers if o.id != c.id]
        for m in c.config.mounts:
            if m.type == "volume" and m.anonymous and not users(m.name, others):
                try:
                    self.remove(m.name, others, force=True)
                except SdcError as e:
                    log.error("container %s: removing volume %s: %s", c.name, m.name, e)

    def prune(self, containers: Iterable[Container], labels: Iterable[str] = (),
              named_too: bool = True) -> tuple[list[str], int]:
        """Remove every volume no container uses (with all of LABELS); named ones only
        if NAMED_TOO (docker's API 1.42 and later prune anonymous volumes unless asked
        for all).  The names and the bytes reclaimed."""
        containers, labels = list(containers), list(labels)
        gone, reclaimed = [], 0
        for v in self.all():
            if users(v.name, containers) or not label_match(v.labels, labels):
                continue
            if not v.anonymous and not named_too:
                continue
            try:
                reclaimed += self.remove(v.name, containers)
                gone.append(v.name)
            except SdcError as e:
                log.error("prune: volume %s: %s", v.name, e)
        return gone, reclaimed

    def collect_leftovers(self) -> None:
        """Directories left with no record by a crash during create or remove."""
        if not self.root.is_dir():
            return
        for d in self.root.iterdir():
            if d.is_dir() and not (d / "volume.json").exists() and \
                    not self._mounted(d / "_data"):
                log.info("removing leftover volume directory %s", d)
                shutil.rmtree(d, ignore_errors=True)

    # -- containers' mounts -------------------------------------------------------

    def resolve(self, mounts: list[MountSpec], image_volumes: Iterable[str],
                inherited: list[MountSpec], driver: str = "") -> list[MountSpec]:
        """A create's mounts with every volume made and pointed at: named ones created
        if missing, `-v /path` and the image's VOLUMEs as anonymous volumes, and
        INHERITED (--volumes-from) where nothing else mounts on that target.  DRIVER
        (HostConfig.VolumeDriver) is the driver of the volumes made here, as with
        docker: a volume that exists keeps its own, so only a new one can refuse it."""
        out: list[MountSpec] = []
        made: list[Volume] = []
        try:
            for m in mounts:
                if m.type == "volume":
                    # An existing one keeps its driver; create checks the name.
                    known = self._load(m.name) if m.name and NAME_RE.fullmatch(m.name) else None
                    v = known or self.create(m.name or None, driver, anonymous=not m.name)
                    if not m.name:
                        made.append(v)
                    source = self.mountpoint(v)
                    m = replace(m, source=str(source / m.subpath if m.subpath else source),
                                name=v.name, anonymous=not m.name)
                out.append(m)
            taken = {norm(m.target) for m in out}
            for m in inherited:
                if norm(m.target) not in taken:
                    out.append(m)
                    taken.add(norm(m.target))
            for target in image_volumes:
                if norm(target) not in taken:
                    v = self.create(None, driver, anonymous=True)
                    made.append(v)
                    out.append(MountSpec("volume", norm(target), str(self.mountpoint(v)),
                                         name=v.name, anonymous=True))
                    taken.add(norm(target))
        except BaseException:
            for v in made:
                with contextlib.suppress(SdcError):
                    self.remove(v.name, [])
            raise
        return out

    def forget(self, mounts: Iterable[MountSpec]) -> None:
        """Remove the anonymous volumes among MOUNTS (a create that failed after
        `resolve`)."""
        for m in mounts:
            if m.type == "volume" and m.anonymous:
                with contextlib.suppress(SdcError):
                    self.remove(m.name, [], force=True)


def norm(target: str) -> str:
    """A mount target as a clean absolute path."""
    return os.path.normpath("/" + target.lstrip("/"))


def label_match(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    """Prune's label filters: KEY, KEY=VALUE, and their negations label!=..."""
    for w in wanted:
        negate = w.startswith("!")
        if has_labels(labels, [w.lstrip("!")]) == negate:
            return False
    return True


def image_volumes(raw_config: dict[str, Any]) -> list[str]:
    """The VOLUME targets of an image's raw config."""
    volumes = (raw_config.get("config") or {}).get("Volumes") or {}
    return sorted(str(t) for t in volumes) if isinstance(volumes, dict) else []


def volumes_from(spec: str, containers_mounts: list[MountSpec]) -> list[MountSpec]:
    """What --volumes-from SPEC (CONTAINER[:ro|:rw]) brings: the container's volumes and
    binds, read-only with :ro, as they are with :rw or nothing."""
    _, _, mode = spec.partition(":")
    if mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"invalid mode for volumes-from: {spec}")
    out = []
    for m in containers_mounts:
        if m.type in ("volume", "bind"):
            readonly = m.readonly if mode == "" else mode == "ro"
            out.append(replace(m, readonly=readonly, anonymous=False))
    return out


def tree_size(path: Path) -> int:
    """Bytes of the regular files under PATH (symlinks not followed)."""
    total = 0
    with contextlib.suppress(OSError):
        for _, _, files, dirfd in os.fwalk(path):
            for f in files:
                with contextlib.suppress(OSError):
                    st = os.stat(f, dir_fd=dirfd, follow_symlinks=False)
                    total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total
