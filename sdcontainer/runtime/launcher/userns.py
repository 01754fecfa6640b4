"""--userns=auto in the launcher: a user namespace mapping container root to an
unprivileged host range, and the image layers mounted idmapped through it.

The mounts are made by real root before the workload joins the namespace (as
runc and crun do with idmapped mounts), so no layer is ever chowned or copied.
"""

from __future__ import annotations

import os

from .. import syscalls as sc


def create(base: int, size: int) -> int:
    """A new user namespace with 0..SIZE mapped to BASE..BASE+SIZE; an fd on it."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(1, "cannot create a user namespace")
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {base} {size}\n")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def idmap_layers(layers: list[str], scratch: str, userns_fd: int) -> list[str]:
    """Idmapped binds of LAYERS under SCRATCH (in our own mount namespace); their paths."""
    mapped = []
    for i, layer in enumerate(layers):
        target = os.path.join(scratch, str(i))
        os.makedirs(target, mode=0o700, exist_ok=True)
        sc.idmapped_bind(layer, target, userns_fd)
        mapped.append(target)
    return mapped
