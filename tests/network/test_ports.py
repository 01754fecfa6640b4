"""Published ports: DNAT from the host, hairpin, host IP binding, conflicts (in the box)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcontainer.errors import Conflict
from sdcontainer.network import AttachRequest, PortMapping
from sdcontainer.network.firewall import nft

from .conftest import Env, new_id
from .workload import httpd, udp_ask, udp_echo, wget

pytestmark = pytest.mark.netbox


def test_published_tcp(env: Env, tmp_path: Path) -> None:
    web = env.mgr.attach(AttachRequest(new_id(), "web", "web",
                                       publish=[PortMapping("", 18080, 80)]))
    other = env.mgr.attach(AttachRequest(new_id(), "other", "other"))
    gw = web.gateway
    assert env.mgr.port(web.container_id) == [PortMapping("", 18080, 80, "tcp")]
    with httpd(web.netns_path or "", tmp_path / "www", text="published"):
        assert wget(None, "http://127.0.0.1:18080/") == "published"
        assert wget(None, f"http://{gw}:18080/") == "published"
        # Hairpin: another container, and the container itself, via the host.
        assert wget(other.netns_path, f"http://{gw}:18080/") == "published"
        assert wget(web.netns_path, f"http://{gw}:18080/") == "published"
    env.mgr.detach(web.container_id)
    assert env.mgr.port(web.container_id) == []
    assert web.container_id not in nft(None, "list", "chain", "inet", "sdcontainer", "published")


def test_published_udp_and_range(env: Env, tmp_path: Path) -> None:
    svc = env.mgr.attach(AttachRequest(new_id(), "svc", "svc", publish=[
        PortMapping("", 15353, 53, "udp"), PortMapping("", 18100, 80, "tcp", 2)]))
    other = env.mgr.attach(AttachRequest(new_id(), "other", "other"))
    assert [p.host_port for p in env.mgr.port(svc.container_id)] == [15353, 18100, 18101]
    with udp_echo(svc.netns_path or "", 53):
        assert udp_ask(None, "127.0.0.1", 15353) == "echo:ping"
        assert udp_ask(other.netns_path, svc.gateway or "", 15353) == "echo:ping"
    with httpd(svc.netns_path or "", tmp_path / "a", 80, "eighty"), \
            httpd(svc.netns_path or "", tmp_path / "b", 81, "eighty-one"):
        assert wget(None, "http://127.0.0.1:18100/") == "eighty"
        assert wget(None, "http://127.0.0.1:18101/") == "eighty-one"


def test_host_port_zero_picks_a_free_port(env: Env, tmp_path: Path) -> None:
    a = env.mgr.attach(AttachRequest(new_id(), "a", "a", publish=[PortMapping("", 0, 80)]))
    (mapping,) = env.mgr.port(a.container_id)
    assert mapping.host_port > 0 and a.ports == (mapping,)
    with httpd(a.netns_path or "", tmp_path / "www", text="any"):
        assert wget(None, f"http://127.0.0.1:{mapping.host_port}/") == "any"


def test_localhost_publish_not_reachable_from_other_netns(env: Env, tmp_path: Path) -> None:
    web = env.mgr.attach(AttachRequest(new_id(), "web", "web",
                                       publish=[PortMapping("127.0.0.1", 18443, 80)]))
    other = env.mgr.attach(AttachRequest(new_id(), "other", "other"))
    gw = web.gateway
    with httpd(web.netns_path or "", tmp_path / "www", text="local-only"):
        assert wget(None, "http://127.0.0.1:18443/") == "local-only"
        assert wget(None, f"http://{gw}:18443/", timeout=1) is None
        assert wget(other.netns_path, f"http://{gw}:18443/", timeout=1) is None
        assert wget(other.netns_path, "http://127.0.0.1:18443/", timeout=1) is None
        # The CVE-2020-8558 trick: route 127.0.0.1 to the host over the bridge.
        ns = other.netns_path or ""
        for cmd in (["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
                    ["ip", "route", "del", "local", "127.0.0.1", "table", "local"],
                    ["ip", "route", "del", "local", "127.0.0.0/8", "table", "local"],
                    ["ip", "route", "add", "127.0.0.1/32", "via", gw or "", "dev", "eth0"]):
            subprocess.run(["nsenter", f"--net={ns}", *cmd], check=True)
        assert wget(ns, "http://127.0.0.1:18443/", timeout=1) is None


@pytest.fixture
def outside(env: Env) -> Iterator[str]:
    """A namespace that reaches the box over a routed link, like another machine."""
    name = f"sdctest-out{env.n}"
    host_if = f"xo{env.n}"
    net = f"10.250.{env.n}"
    cmds = [["ip", "netns", "add", name],
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name],
            ["ip", "addr", "add", f"{net}.1/30", "dev", host_if],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "-n", name, "addr", "add", f"{net}.2/30", "dev", "eth0"],
            ["ip", "-n", name, "link", "set", "eth0", "up"],
            ["ip", "-n", name, "route", "add", "default", "via", f"{net}.1"]]
    for c in cmds:
        subprocess.run(c, check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "del", name], check=False)
    subprocess.run(["ip", "link", "del", host_if], check=False, capture_output=True)


def test_unpublished_port_not_reachable_from_outside(env: Env, tmp_path: Path,
                                                     outside: str) -> None:
    web = env.mgr.attach(AttachRequest(new_id(), "web", "web",
                                       publish=[PortMapping("", 18090, 80)]))
    with httpd(web.netns_path or "", tmp_path / "www", 80, "pub"), \
            httpd(web.netns_path or "", tmp_path / "hidden", 8081, "hidden"):
        # Published: through the host's address on the outside link.
        assert wget(outside, f"http://10.250.{env.n}.1:18090/") == "pub"
        # Not by routing straight to the container's address (moby#45610),
        # neither the published container port nor an unpublished one.
        assert wget(outside, f"http://{web.ip}:8081/", timeout=1) is None
        assert wget(outside, f"http://{web.ip}:80/", timeout=1) is None
        # The host itself may still talk to it directly.
        assert wget(None, f"http://{web.ip}:8081/") == "hidden"


def _leftovers(env: Env, cid: str) -> list[str]:
    found = []
    if cid in nft(None, "list", "table", "inet", "sdcontainer"):
        found.append("nft rule")
    if f"sdcv{cid[:8]}" in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                          text=True, check=True).stdout:
        found.append("veth")
    if (env.run / "netns" / cid).exists():
        found.append("netns")
    if (env.run / "containers" / cid).exists():
        found.append("files")
    if any(cid in p.read_text() for p in (env.state / "networks").rglob("*.json")):
        found.append("state")
    return found


def test_taken_host_port_conflicts_and_leaks_nothing(env: Env) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("0.0.0.0", 18200))
    squatter.listen(1)
    try:
        cid = new_id()
        with pytest.raises(Conflict, match="18200"):
            env.mgr.attach(AttachRequest(cid, "c", "c", publish=[
                PortMapping("", 18201, 80), PortMapping("", 18200, 81)]))
        assert _leftovers(env, cid) == []
        # The first port of the failed run was released again.
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("0.0.0.0", 18201))
        probe.close()
    finally:
        squatter.close()


def test_port_taken_by_another_container(env: Env) -> None:
    a = env.mgr.attach(AttachRequest(new_id(), "a", "a", publish=[PortMapping("", 18300, 80)]))
    cid = new_id()
    with pytest.raises(Conflict):
        env.mgr.attach(AttachRequest(cid, "b", "b", publish=[PortMapping("", 18300, 80)]))
    assert _leftovers(env, cid) == []
    env.mgr.detach(a.container_id)
    b = env.mgr.attach(AttachRequest(cid, "b", "b", publish=[PortMapping("", 18300, 80)]))
    assert b.ports[0].host_port == 18300
