"""How a CRI container is recorded in the engine's own container record, so that
ListContainers and ContainerStatus are rebuilt from engine records after a restart:
the CRI side (sandbox, metadata, labels, annotations, image as asked, log path) is
one JSON label.  The name starts with k8s-, as dockershim's k8s_ names did, but is
a host name, so that machinectl takes it too."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..engine.records import Container
from ..model.spec import from_dict

LABEL = "io.sdcontainer.cri.container"
SANDBOX_LABEL = "io.sdcontainer.cri.sandbox-id"
_UNSAFE = re.compile(r"[^a-zA-Z0-9-]")
MAX_MACHINE_NAME = 64  # systemd-machined takes host names


@dataclass
class CriMeta:
    """The CRI side of an engine container."""

    sandbox_id: str
    name: str
    attempt: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    image: str = ""  # ImageSpec.image as CreateContainer gave it
    log_path: str = ""  # absolute: the pod's log_directory + the container's log_path

    def labels_for_engine(self) -> dict[str, str]:
        """The engine labels that carry it."""
        return {LABEL: json.dumps(asdict(self), sort_keys=True), SANDBOX_LABEL: self.sandbox_id}


def meta_of(c: Container) -> CriMeta | None:
    """The CRI side of engine container C; None for a container CRI did not make."""
    raw = c.config.labels.get(LABEL)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return from_dict(CriMeta, data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None


def container_name(name: str, pod: str, namespace: str, sandbox_id: str, attempt: int) -> str:
    """k8s-NAME-POD-NAMESPACE-SANDBOX8-ATTEMPT: readable in `sdcontainer ps` and
    systemctl, unique per sandbox and attempt (kubelet keeps a dead sandbox's
    containers while it runs the pod's next one), and a valid machine name for
    machinectl (letters, digits and dashes, at most 64); a longer one keeps its
    start and a hash of the whole."""
    full = _UNSAFE.sub("-", f"k8s-{name}-{pod}-{namespace}-{sandbox_id[:8]}-{attempt}")
    if len(full) <= MAX_MACHINE_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{full[:MAX_MACHINE_NAME - 11].rstrip('-')}-{digest}"


def to_ns(rfc3339: str) -> int:
    """An engine time (RFC 3339, UTC) in nanoseconds since the epoch; 0 when unset."""
    try:
        t = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if t.year < 1970:
        return 0
    delta = t - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def now_ns() -> int:
    """The time now in nanoseconds, as CRI's created_at counts."""
    return time.time_ns()


@dataclass(frozen=True)
class Exit:
    """How a container ended, in CRI's words."""

    reason: str
    message: str


def exit_reason(c: Container) -> Exit:
    """CRI's reason for C's state: Completed, Error, OOMKilled (as kubelet expects)."""
    st = c.state
    if st.status not in ("exited", "dead"):
        return Exit("", "")
    if st.oom_killed:
        return Exit("OOMKilled", st.error)
    return Exit("Completed" if st.exit_code == 0 else "Error", st.error)


def label_match(labels: dict[str, str], selector: Any) -> bool:
    """Whether LABELS hold every key=value of SELECTOR (a protobuf map or a dict)."""
    return all(labels.get(k) == v for k, v in selector.items())
