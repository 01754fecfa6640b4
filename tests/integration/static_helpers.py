"""Static attack helpers for the security tests: small C programs built with `gcc -static`.

A static binary runs in any image (busybox has no libc to link against) and needs
nothing from the host once bound into a container (`-v HELPER:/helper:ro`), so an
attack runs as the container's own code would, with no host interpreter in the way.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

_CACHE = Path(tempfile.gettempdir()) / "sdc-static-helpers"


def static_binary(name: str, source: str) -> Path:
    """Compile SOURCE (C) into a static executable called NAME; cached by content."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    out = _CACHE / f"{name}-{digest}"
    if out.exists():
        return out
    _CACHE.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(".c")
    src.write_text(source)
    tmp = out.with_suffix(".tmp")
    r = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(tmp), str(src)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"gcc failed on {name}: {r.stderr}"
    tmp.chmod(0o755)
    tmp.rename(out)
    return out


def bind(path: Path, target: str = "/helper") -> list[str]:
    """The `run` flags that put PATH into a container at TARGET, read-only."""
    return ["-v", f"{path}:{target}:ro"]
