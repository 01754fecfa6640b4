"""Shared fixtures.  Tests marked `box` need the systemd test box (tests/systemd-box):
real systemd as PID 1, journald, D-Bus; elsewhere they are skipped, never faked."""

from __future__ import annotations

import os

import pytest


def in_box() -> bool:
    """Whether we run inside tests/systemd-box (systemd is PID 1 of a throwaway box)."""
    try:
        with open("/proc/1/environ", "rb") as f:
            return b"container=sdcbox" in f.read().split(b"\0")
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_box() or os.environ.get("SDCONTAINER_TEST_HOST_SYSTEMD") == "1":
        return
    skip = pytest.mark.skip(reason="needs the systemd box: run tests through tests/systemd-box")
    for item in items:
        if "box" in item.keywords:
            item.add_marker(skip)
