"""DeviceCgroupRules as systemd DeviceAllow= entries."""

from __future__ import annotations

import pytest

from sdcontainer.engine import devrules
from sdcontainer.errors import InvalidArgument

PROC_DEVICES = """Character devices:
  1 mem
  4 /dev/vc/0
  4 tty
 10 misc

Block devices:
  7 loop
"""


def test_rules_become_node_paths_and_groups() -> None:
    assert devrules.allow_entries(["c 7:128 rwm", "c 4:* rw", "a *:* m", "b 7:* r"],
                                  PROC_DEVICES) == [
        ("/dev/char/7:128", "rwm"), ("char-/dev/vc/0", "rw"), ("char-tty", "rw"),
        ("char-*", "m"), ("block-*", "m"), ("block-loop", "r")]


@pytest.mark.parametrize("rule", ["c 1 rwm", "x 1:2 r", "c 1:2 rx", "c 1:2 rr", ""])
def test_bad_rules_are_refused(rule: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid device cgroup rule"):
        devrules.check(rule)
