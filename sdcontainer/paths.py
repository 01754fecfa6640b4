"""Where sdcontainer keeps things.  Each can be moved with an environment
variable so tests and the test box can point a daemon at scratch directories."""

from __future__ import annotations

import os
from pathlib import Path

# Everything a container can write (its upper layer, its /etc/hosts, resolv.conf and
# hostname) is under STATE_DIR.  RUN_DIR holds only what the daemon and monitors write
# (sockets, namespace files, exit files of a few hundred bytes), never a file bound
# into a container: /run is a small tmpfs that systemd itself needs.
STATE_DIR = Path(os.environ.get("SDCONTAINER_STATE_DIR", "/var/lib/sdcontainer"))
RUN_DIR = Path(os.environ.get("SDCONTAINER_RUN_DIR", "/run/sdcontainer"))
CONFIG_FILE = Path(os.environ.get("SDCONTAINER_CONFIG", "/etc/sdcontainer/sdcontainer.toml"))
SOCKET = Path(os.environ.get("SDCONTAINER_SOCKET", str(RUN_DIR / "sdcontainer.sock")))

CONTAINERS_DIR = STATE_DIR / "containers"
IMAGES_DIR = STATE_DIR / "images"
NETWORKS_DIR = STATE_DIR / "networks"
RUN_CONTAINERS_DIR = RUN_DIR / "containers"

ROOT_SLICE = "sdcontainer.slice"


def scope_name(name: str) -> str:
    """The systemd scope unit of container NAME."""
    return f"sdcontainer-{name}.scope"


def slice_name(name: str) -> str:
    """The systemd slice unit holding container NAME's scope (and its helpers)."""
    return f"sdcontainer-{name}.slice"
