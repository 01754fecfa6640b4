"""Pod sandbox records: what RunPodSandbox was asked, kept as JSON under
/var/lib/sdcontainer/cri/sandboxes/ so that a restarted daemon lists the same pods."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import InvalidArgument, NotFound
from ..model.spec import from_dict
from ..util.fileio import fsync_dir, write_json_atomic

log = logging.getLogger(__name__)

SANDBOXES_DIR = paths.STATE_DIR / "cri" / "sandboxes"
PODS_RUN_DIR = paths.RUN_DIR / "cri" / "pods"

READY = "ready"
NOTREADY = "notready"


@dataclass
class Sandbox:
    """A pod sandbox: its metadata, the settings its containers inherit, and the
    namespaces pinned for it (docs/kubernetes.md).

    net/ipc/uts: "pod" (pinned under pin_dir) or "node" (the host's).  state: READY
    while its namespaces are pinned, NOTREADY once stopped (or after a reboot).
    created_at: nanoseconds since the epoch, as CRI counts.
    """

    id: str
    name: str
    uid: str
    namespace: str
    attempt: int
    hostname: str = ""
    log_directory: str = ""
    dns_servers: list[str] = field(default_factory=list)
    dns_searches: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    cgroup_parent: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    runtime_handler: str = ""
    net: str = "pod"
    ipc: str = "pod"
    uts: str = "pod"
    created_at: int = 0
    state: str = READY

    @property
    def pin_dir(self) -> Path:
        """Where its namespaces are bind-mounted: pin_dir/{net,ipc,uts}."""
        return PODS_RUN_DIR / self.id

    def ns_path(self, kind: str) -> str:
        """The pinned namespace file KIND (net, ipc, uts), or "" when it is the host's."""
        return str(self.pin_dir / kind) if getattr(self, kind) == "pod" else ""

    @property
    def ready(self) -> bool:
        """Whether containers may still be created and started in it."""
        return self.state == READY

    def to_json(self) -> dict[str, Any]:
        """The record's JSON form."""
        return asdict(self)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Sandbox:
        """From the JSON form (unknown keys, from newer versions, are ignored)."""
        return from_dict(cls, data)


def new_sandbox_id() -> str:
    """A fresh 64-hex sandbox id, of the same shape as container ids."""
    return secrets.token_hex(32)


class SandboxStore:
    """The sandbox records on disk.  Writes run in worker threads (fsync)."""

    def __init__(self, root: Path = SANDBOXES_DIR) -> None:
        self.root = root

    def _path(self, sandbox_id: str) -> Path:
        return self.root / f"{sandbox_id}.json"

    def save(self, s: Sandbox) -> None:
        """Write S's record atomically."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_json_atomic(self._path(s.id), s.to_json())

    def delete(self, sandbox_id: str) -> None:
        """Forget a sandbox's record (already gone is fine)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(sandbox_id))
            fsync_dir(self.root)

    def load_all(self) -> list[Sandbox]:
        """Every readable record; an unreadable one is logged and set aside."""
        found: list[Sandbox] = []
        if not self.root.is_dir():
            return found
        for f in sorted(self.root.glob("*.json")):
            try:
                found.append(Sandbox.load(json.loads(f.read_text())))
            except (OSError, ValueError, TypeError) as e:
                log.error("pod sandbox record %s is unreadable (%s); moved aside", f, e)
                with contextlib.suppress(OSError):
                    f.rename(f.with_suffix(".corrupt"))
        return found


def find(sandboxes: dict[str, Sandbox], ref: str) -> Sandbox:
    """The sandbox whose id is REF, or the only one it is a prefix of."""
    if ref in sandboxes:
        return sandboxes[ref]
    matches = [s for s in sandboxes.values() if ref and s.id.startswith(ref)]
    if len(matches) > 1:
        raise InvalidArgument(f"pod sandbox id prefix {ref!r} is ambiguous")
    if not matches:
        raise NotFound(f"pod sandbox {ref!r} not found")
    return matches[0]
