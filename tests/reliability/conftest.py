"""Fixtures for the reliability tests: the integration tests' daemon and image, reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import busybox, daemon, name  # noqa: F401 - fixtures

from .helpers import disarm, reset_daemon


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(str(Path(__file__).parent)):
            item.add_marker(pytest.mark.box)


@pytest.fixture
def healthy_daemon(daemon: None) -> None:  # noqa: F811 - the fixture imported above
    """The daemon running, without crash points, its restart limit reset."""
    disarm()
    reset_daemon()
