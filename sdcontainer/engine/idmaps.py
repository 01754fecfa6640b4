"""Subordinate id ranges for --userns=auto, from /etc/subuid and /etc/subgid.

The ranges of user `sdcontainer` (or podman's `containers`) are cut into blocks
of 65536 ids, one per container that asks, never shared between containers.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidArgument

BLOCK = 65536
OWNERS = ("sdcontainer", "containers")


def _ranges(path: Path) -> list[tuple[int, int]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in OWNERS and parts[1].isdigit() and parts[2].isdigit():
            found.append((int(parts[1]), int(parts[2])))
    return found


def allocate(used: set[int], subuid: Path = Path("/etc/subuid"),
             subgid: Path = Path("/etc/subgid")) -> int:
    """The first block base free in both files and not in USED."""
    uids, gids = _ranges(subuid), _ranges(subgid)
    if not uids or not gids:
        raise InvalidArgument("--userns=auto needs subordinate ids: add a line like "
                              "'sdcontainer:1000000:1000000' to /etc/subuid and /etc/subgid")
    for start, count in uids:
        for base in range(start, start + count - BLOCK + 1, BLOCK):
            in_gids = any(gs <= base and base + BLOCK <= gs + gc for gs, gc in gids)
            if in_gids and base not in used:
                return base
    raise InvalidArgument("--userns=auto: every subordinate id block is in use")
