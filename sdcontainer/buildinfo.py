"""Which source this sdcontainer was built from, for `sdcontainer version`.

A release build writes ``sdcontainer/_build.py`` (``COMMIT = "..."``; see
packaging/build-tree), which git ignores.  In a git checkout without it, ask
git; anywhere else the commit is "unknown".  Only `version` calls this, so the
CLI's start-up never runs a subprocess.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .errors import SdcError


def commit() -> str:
    """The git commit (12 hex digits, -dirty for uncommitted changes) of this build."""
    try:
        return str(importlib.import_module(f"{__package__}._build").COMMIT)
    except ImportError:
        pass
    top = Path(__file__).resolve().parent.parent
    if not (top / ".git").exists():
        return "unknown"
    from .util.run import run

    try:
        head = run(["git", "-C", str(top), "rev-parse", "--short=12", "HEAD"], timeout=5)
        dirty = run(["git", "-C", str(top), "status", "--porcelain", "--untracked-files=no"],
                    timeout=5)
    except SdcError:
        return "unknown"
    return head.stdout.decode().strip() + ("-dirty" if dirty.stdout.strip() else "")
