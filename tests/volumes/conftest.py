"""Fixtures for the volume and `cp` tests: the integration suite's daemon and image."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import busybox, daemon, name  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(str(Path(__file__).parent)):
            item.add_marker(pytest.mark.box)
