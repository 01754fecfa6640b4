"""Joining another process's cgroups, in every hierarchy (v1, hybrid or unified).

An exec session forked by the zygote starts in the daemon's cgroups; before it
runs anything it moves into those of the container's supervisor, so that the
scope's limits, device policy and accounting apply to it as they did when the
supervisor forked it itself.
"""

from __future__ import annotations

import os

from ..errors import SdcError


def _mounts() -> list[tuple[frozenset[str], str, str]]:
    """The cgroup hierarchies mounted here: (controllers or {"name=..."}, an empty set for
    cgroup2; the mount's root within the hierarchy; its mount point)."""
    found: list[tuple[frozenset[str], str, str]] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup2":
                found.append((frozenset(), fields[3], fields[4]))
            elif fstype == "cgroup":
                kinds = {o for o in options if o not in ("rw", "ro")}
                found.append((frozenset(kinds), fields[3], fields[4]))
    return found


def join_cgroups_of(pid: int) -> None:
    """Move the calling process into PID's cgroup in every hierarchy mounted here.
    SdcError if any move fails: the caller must not run anything unaccounted."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    mounts = _mounts()
    for _, controllers, path in lines:
        wanted = frozenset(c for c in controllers.split(",") if c)
        for kinds, root, point in mounts:
            # cgroup2 for the "0::" line; else the v1 hierarchy holding those controllers
            # (its options may also carry flags such as xattr).
            if (not wanted and kinds) or (wanted and not wanted <= kinds):
                continue
            rel = path[len(root):] if root != "/" and path.startswith(root) else path
            target = os.path.join(point, rel.lstrip("/"), "cgroup.procs")
            try:
                with open(target, "w") as procs:
                    procs.write("0")
            except OSError as e:
                raise SdcError(f"cannot join {target}: {e.strerror}") from e
            break
