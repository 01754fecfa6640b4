"""HostConfig.DeviceCgroupRules (`--device-cgroup-rule`) as systemd DeviceAllow= entries.

docker writes each rule to the container's device cgroup; here the scope's device policy
is systemd's, so a rule `TYPE MAJOR:MINOR ACCESS` becomes a DeviceAllow= entry: a number
pair is systemd's `/dev/char/MAJOR:MINOR` (or `/dev/block/`) node path, and a `*` minor
is the device group of that major in /proc/devices (`char-NAME`); a `*` major is every
group (`char-*`). Type `a` is both char and block.
"""

from __future__ import annotations

import re

from ..errors import InvalidArgument

RULE_RE = re.compile(r"([acb]) (\*|\d+):(\*|\d+) ([rwm]{1,3})")
KINDS = {"c": ("char",), "b": ("block",), "a": ("char", "block")}


def check(rule: str) -> str:
    """RULE, or a one-line error naming it."""
    m = RULE_RE.fullmatch(rule.strip())
    if m is None or len(set(m.group(4))) != len(m.group(4)):
        raise InvalidArgument(f"invalid device cgroup rule {rule!r}: want TYPE MAJOR:MINOR "
                              "ACCESS, e.g. 'c 7:128 rwm' (TYPE a|b|c, * for any number, "
                              "ACCESS of r, w, m)")
    return rule.strip()


def device_groups(text: str) -> dict[tuple[str, int], list[str]]:
    """/proc/devices as (char|block, major) -> group names."""
    groups: dict[tuple[str, int], list[str]] = {}
    kind = ""
    for line in text.splitlines():
        if line.startswith("Character devices"):
            kind = "char"
        elif line.startswith("Block devices"):
            kind = "block"
        else:
            number, _, name = line.strip().partition(" ")
            if kind and number.isdigit() and name:
                groups.setdefault((kind, int(number)), []).append(name.strip())
    return groups


def allow_entries(rules: list[str], proc_devices: str | None = None
                  ) -> list[tuple[str, str]]:
    """The DeviceAllow= pairs for RULES (checked already).  A `*` minor of a major no
    driver has registered gives nothing: systemd matches groups, not bare majors."""
    if proc_devices is None:
        with open("/proc/devices") as f:
            proc_devices = f.read()
    groups = device_groups(proc_devices)
    out: list[tuple[str, str]] = []
    for rule in rules:
        m = RULE_RE.fullmatch(check(rule))
        assert m is not None
        letter, major, minor, access = m.groups()
        for kind in KINDS[letter]:
            if major == "*":
                out.append((f"{kind}-*", access))
            elif minor == "*":
                out += [(f"{kind}-{g}", access) for g in groups.get((kind, int(major)), [])]
            else:
                out.append((f"/dev/{kind}/{int(major)}:{int(minor)}", access))
    return out
