"""Pause and unpause: systemd freezes the container's scope (FreezeUnit, ThawUnit).

systemd freezes units only through the cgroup v2 freezer; on a legacy or hybrid
host it answers that it cannot, and we say so in one line.
"""

from __future__ import annotations

import os

from ..errors import Unsupported


def unsupported(name: str, verb: str) -> Unsupported:
    """The one-line reason this host cannot VERB (pause, unpause) container NAME."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        why = "systemd reports that it cannot freeze the container's scope on this host"
    else:
        layout = "hybrid" if os.path.isdir("/sys/fs/cgroup/unified") else "legacy (v1)"
        why = (f"this host's cgroups cannot freeze it: systemd freezes units only on the "
               f"unified cgroup v2 hierarchy, and this host uses the {layout} one")
    return Unsupported(f"cannot {verb} container {name}: {why}")
