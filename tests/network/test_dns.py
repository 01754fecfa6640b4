"""The embedded DNS server of user networks (sdcontainer/network/dns.py) through a
real sdcontainerd in the box: busybox nslookup, which asks the first nameserver of
resolv.conf directly, resolves members and aliases; another network's member is
REFUSED; the server comes back with the daemon, and /etc/hosts carries names while
it is down.  Only names and addresses inside the box are ever asked for."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.integration import conftest as integration
from tests.integration.conftest import sdc, systemctl, wait_for

pytestmark = pytest.mark.box

daemon = integration.daemon
busybox = integration.busybox


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Containers, then networks, the test made: removed afterwards."""
    names: list[str] = []
    yield names
    for n in names:
        sdc("rm", "-f", n)
    for n in names:
        sdc("network", "rm", n)


def fresh(made: list[str], what: str) -> str:
    n = f"dns-{what}-{uuid.uuid4().hex[:6]}"
    made.append(n)
    return n


def run(made: list[str], image: str, network: str, *flags: str, name: str) -> str:
    """Start a sleeping container NAME on NETWORK; its address there."""
    made.insert(0, name)
    r = sdc("run", "-d", "--name", name, "--network", network, *flags, image, "sleep", "600")
    assert r.returncode == 0, r.stderr
    return ip_of(name, network)


def ip_of(name: str, network: str) -> str:
    doc = json.loads(sdc("inspect", name, check=True).stdout)[0]
    return str(doc["NetworkSettings"]["Networks"][network]["IPAddress"])


def nslookup(container: str, *args: str) -> str:
    r = sdc("exec", container, "nslookup", *args, timeout=30)
    return r.stdout + r.stderr


def test_names_over_dns(busybox: str, made: list[str]) -> None:
    net, other_net = fresh(made, "net"), fresh(made, "other")
    for n in (net, other_net):
        assert sdc("network", "create", n).returncode == 0
    gateway = json.loads(sdc("network", "inspect", net, check=True).stdout)[0][
        "IPAM"]["Config"][0]["Gateway"]
    web, client, other = (f"{x}-{uuid.uuid4().hex[:6]}" for x in ("web", "client", "other"))
    web_ip = run(made, busybox, net, "--network-alias", "www", name=web)
    run(made, busybox, net, name=client)
    other_ip = run(made, busybox, other_net, name=other)

    resolv = sdc("exec", client, "cat", "/etc/resolv.conf", check=True).stdout
    assert resolv.startswith(f"nameserver {gateway}\n"), resolv
    for name in (web, "www", web.upper()):
        out = nslookup(client, name)
        assert f"Address: {web_ip}" in out, out
    # A member of another network is not this network's to answer: REFUSED.
    out = nslookup(client, other, gateway)
    assert "REFUSED" in out and other_ip not in out, out

    assert sdc("restart", "-t", "0", client).returncode == 0
    assert f"Address: {web_ip}" in nslookup(client, web)

    pid = json.loads(sdc("inspect", client, check=True).stdout)[0]["State"]["Pid"]
    systemctl("stop", "sdcontainerd.service", check=True)
    try:
        # Without the daemon the gateway's port 53 is closed; /etc/hosts still names web
        # (busybox has no getent: ping resolves through the C library, files first).
        r = subprocess.run(["nsenter", "-t", str(pid), "-m", "-n", "-r", "-w", "ping", "-c", "1",
                            "-W", "5", web], capture_output=True, text=True, timeout=30)
        assert f"({web_ip})" in r.stdout, r.stdout + r.stderr
    finally:
        systemctl("start", "sdcontainerd.service", check=True)
        assert wait_for(lambda: sdc("ps").returncode == 0, timeout=30)
    assert f"Address: {web_ip}" in nslookup(client, web)
