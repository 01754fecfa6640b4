"""--user resolution from the container's own /etc/passwd and /etc/group.

We parse the files ourselves: the pwd and grp modules would go through the
host's NSS configuration, which has no business inside the container.

The files are the image's, so a hostile image chooses what they are: a FIFO
would block us forever, a huge file would fill our memory.  We open them
without blocking, read only regular files, and at most MAX_BYTES of them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from .sandbox_errors import ExecFailure


@dataclass(frozen=True)
class Identity:
    """Who the workload runs as."""

    uid: int
    gid: int
    groups: list[int]
    home: str


MAX_BYTES = 16 << 20


def read_small_file(path: str, limit: int = MAX_BYTES) -> str:
    """The text of PATH if it is a regular file; '' for anything else or an error.

    O_NONBLOCK makes opening a FIFO return at once (and then it is refused as not a
    regular file); O_NOCTTY keeps a tty from becoming ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        chunks = []
        left = limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _entries(path: str) -> list[list[str]]:
    return [line.split(":") for line in read_small_file(path).splitlines()
            if line.strip() and not line.startswith("#")]


def resolve_user(spec: str, group_add: Sequence[str] = ()) -> Identity:
    """Resolve docker's `user[:group]` (names or numbers) and --group-add inside the
    current root."""
    user, _, group = (spec or "0").partition(":")
    passwd = _entries("/etc/passwd")
    groups = _entries("/etc/group")
    uid: int | None = None
    gid: int | None = None
    home = "/"
    name = None
    for e in passwd:
        if len(e) >= 7 and (e[0] == user or e[2] == user):
            name, uid, gid, home = e[0], int(e[2]), int(e[3]), e[5] or "/"
            break
    if uid is None:
        if not user.isdigit():
            raise ExecFailure(
                125, f"unable to find user {user}: no matching entries in passwd file")
        uid, gid = int(user), 0
        home = "/"
    if group:
        gid = None
        for e in groups:
            if len(e) >= 3 and (e[0] == group or e[2] == group):
                gid = int(e[2])
                break
        if gid is None:
            if not group.isdigit():
                raise ExecFailure(
                    125, f"unable to find group {group}: no matching entries in group file")
            gid = int(group)
    assert gid is not None
    extra = sorted({int(e[2]) for e in groups
                    if len(e) >= 4 and name and name in e[3].split(",") and e[2].isdigit()})
    groups_list = [gid, *[g for g in extra if g != gid]] if not group else [gid]
    for g in group_add:
        found = next((int(e[2]) for e in groups if len(e) >= 3 and (e[0] == g or e[2] == g)),
                     None)
        if found is None:
            if not g.isdigit():
                raise ExecFailure(125, f"unable to find group {g}: no matching entries in "
                                  "group file")
            found = int(g)
        if found not in groups_list:
            groups_list.append(found)
    return Identity(uid, gid, groups_list, home)
