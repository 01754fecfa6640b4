"""Fixtures for the network tests.

Tests that touch the kernel carry the `netbox` marker and run only inside
tests/systemd-box, whose network namespace is thrown away afterwards: they
create bridges, addresses and nftables rules and must never reach the host's
real network.  Unlike the generic `box` marker, no environment variable can
make them run elsewhere.
"""

from __future__ import annotations

import itertools
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdcontainer.network import NetworkConfig, NetworkManager, nsutil
from tests.conftest import in_box


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_box():
        return
    skip = pytest.mark.skip(reason="touches the network: run through tests/systemd-box")
    for item in items:
        if "netbox" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netbox: needs the systemd box's own network namespace")


_counter = itertools.count(1)


@dataclass
class Env:
    """A NetworkManager with its own bridge, subnets and state directories."""

    mgr: NetworkManager
    config: NetworkConfig
    state: Path
    run: Path
    n: int

    def new_manager(self) -> NetworkManager:
        """Another manager on the same state (as a restarted daemon would be)."""
        return NetworkManager(self.state, self.run, self.config)


def make_config(n: int, tmp: Path) -> NetworkConfig:
    """Per-test bridge and subnets, so tests never share addresses."""
    resolv = tmp / "host-resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\nnameserver 10.254.0.53\nsearch example.test\n")
    return NetworkConfig(subnet=f"10.{100 + n}.0.0/24", bridge=f"sdct{n}",
                         user_subnets=f"10.{200 + n % 50}.0.0/16", resolv_conf=str(resolv))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    n = next(_counter)
    config = make_config(n, tmp_path)
    state, run = tmp_path / "state", tmp_path / "run"
    mgr = NetworkManager(state, run, config)
    e = Env(mgr, config, state, run, n)
    yield e
    mgr.reconcile(set())
    mgr.prune()
    mgr.close()
    subprocess.run(["ip", "link", "del", config.bridge], capture_output=True, check=False)
    # The manager made run/netns a shared mount point, as `ip netns` does.
    nsutil.umount(str(run / "netns"))


def new_id() -> str:
    """A random container id."""
    return secrets.token_hex(32)
