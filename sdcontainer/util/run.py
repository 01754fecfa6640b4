"""The one way sdcontainer runs other programs.

Pins the environment's language, traces the command at debug level, and turns
failures into a sentence naming the program ("nft failed: ...", "journalctl
not found") instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
from collections.abc import Sequence

from ..errors import SdcError

log = logging.getLogger(__name__)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env["LANG"] = "C.UTF-8"
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float | None = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ARGV to completion, capturing output; raise SdcError with its stderr on failure."""
    log.debug("+ %s", shlex.join(argv))
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, env=_env(env),
                              timeout=timeout, check=False)
    except FileNotFoundError as e:
        raise SdcError(f"{argv[0]} not found") from e
    except subprocess.TimeoutExpired as e:
        raise SdcError(f"{argv[0]} did not finish within {timeout} s") from e
    if check and proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        why = detail[-1] if detail else describe_status(proc.returncode)
        raise SdcError(f"{argv[0]} failed: {why}")
    return proc


def describe_status(returncode: int) -> str:
    """'exited with 3', 'was killed by SIGKILL'."""
    if returncode < 0:
        import signal

        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with {returncode}"


async def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None
                ) -> asyncio.subprocess.Process:
    """Start ARGV with its stdout piped, for streaming readers (journalctl -f)."""
    log.debug("+ %s", shlex.join(argv))
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_env(env))
    except FileNotFoundError as e:
        raise SdcError(f"{argv[0]} not found") from e
