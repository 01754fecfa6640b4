"""Fixtures for the build tests: the integration suite's daemon and busybox image."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import busybox, daemon, name  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).name.startswith("test_box_"):
            item.add_marker(pytest.mark.box)
