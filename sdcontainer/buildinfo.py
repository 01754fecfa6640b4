"""Which source this sdcontainer was built from, for `sdcontainer version`.

A release build writes ``sdcontainer/_build.py`` (``COMMIT = "..."``; see
packaging/build-tree), which git ignores.  In a git checkout without it, ask
git; anywhere else the commit is "unknown".  Only `version` calls this, so the
CLI's start-up never runs a subprocess.
"""

from __future__ import annotations

import importlib
from pathlib import Path


def commit() -> str:
    """The git commit (12 hex digits, -dirty for uncommitted changes) of this build."""
    try:
        return str(importlib.import_module(f"{__package__}._build").COMMIT)
    except ImportError:
        pass
    top = Path(__file__).resolve().parent.parent
    if not (top / ".git").exists():
        return "unknown"
    # subprocess directly, not util.run: that one brings asyncio into the CLI.
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(top), *args], capture_output=True, check=True,
                              timeout=5).stdout.decode().strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")
