"""The static init (tini) that runs `--init` workloads and `exec` sessions, from a sealed memfd.

Nothing a container can see may be a copy of the daemon's interpreter: a
Python PID 1 (`--init`) or a Python parent of an exec'd process carries the
daemon's heap (a container read the TLS key from /proc/1/mem) and its
/proc/PID/exe is the host's python binary, which a container holding
CAP_SYS_PTRACE could open, and later write (runc CVE-2019-5736).  So:

- `--init` execs tini as PID 1 (docker's own --init is tini);
- an exec session's last step outside the container's pid namespace execs
  tini, whose child is the first process of the session the container can see.

tini is Debian's static build, copied once per daemon into a memfd that is
sealed against writes: /proc/PID/exe then names an anonymous, unwritable
copy, not a host file, and a static binary needs no loader from the image.
The daemon loads it before forking the zygote, so every monitor inherits the fd.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping, Sequence
from typing import NoReturn

from .sandbox_errors import ExecFailure

CANDIDATES = ("/usr/bin/tini-static",)
MFD_EXEC = 0x0010  # Linux 6.3+: say the memfd is meant to be executed (vm.memfd_noexec)

_fd = -1


def load(path: str | None = None) -> int:
    """Copy the static init into a sealed memfd kept for the life of the process; returns
    its fd, or -1 when no static init is installed (then `exec` and `--init` fail clearly)."""
    global _fd
    if _fd >= 0:
        return _fd
    found = next((p for p in ([path] if path else CANDIDATES) if os.path.exists(p)), None)
    if found is None:
        return -1
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("tini", flags | MFD_EXEC)
    except OSError:  # a kernel older than 6.3 knows no MFD_EXEC
        fd = os.memfd_create("tini", flags)
    try:
        with open(found, "rb") as f:
            data = f.read()
        if data[:4] != b"\x7fELF":
            raise OSError(f"{found} is not an ELF executable")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o555)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except BaseException:
        os.close(fd)
        raise
    _fd = fd
    return fd


def fd() -> int:
    """The sealed memfd (-1 when none was loaded)."""
    return _fd


def find_executable(name: str, environ: Mapping[str, str]) -> str:
    """NAME as execvp would find it in the container's PATH, with docker's errors."""
    if "/" in name:
        if not os.path.exists(name):
            raise ExecFailure(127, f"exec {name}: no such file or directory")
        return name
    for d in environ.get("PATH", "").split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ExecFailure(127, f"exec: \"{name}\": executable file not found in $PATH")


def exec_init(argv: Sequence[str], environ: Mapping[str, str], subreaper: bool) -> NoReturn:
    """Become tini running ARGV (SUBREAPER: we are not the pid namespace's PID 1)."""
    if _fd < 0:
        raise ExecFailure(125, "no static init found: install the tini package "
                          f"({' or '.join(CANDIDATES)})")
    if not argv:
        raise ExecFailure(125, "no command specified")
    find_executable(argv[0], environ)
    args = ["tini", *(["-s"] if subreaper else []), "--", *argv]
    try:
        os.execve(_fd, args, dict(environ))
    except OSError as e:
        raise ExecFailure(125, f"cannot run the static init: {e.strerror}") from e
