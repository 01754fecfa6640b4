"""Pure tests: configuration, name files, IPAM and records (no network touched)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sdcontainer.errors import Conflict, InvalidArgument
from sdcontainer.network import AttachRequest, NetworkConfig, NetworkRecord, PortMapping, hosts
from sdcontainer.network.ipam import Ipam
from sdcontainer.network.networks import NetworkStore
from sdcontainer.network.store import StateLock, read_json, write_json

CID = "a" * 64


def test_config_defaults_and_load(tmp_path: Path) -> None:
    assert NetworkConfig.load(tmp_path / "missing.toml") == NetworkConfig()
    f = tmp_path / "sdcontainer.toml"
    f.write_text('[network]\nsubnet = "10.90.0.0/16"\nbridge = "br-x"\nmtu = 1400\n'
                 'dns = ["10.90.255.53"]\n[other]\nx = 1\n')
    c = NetworkConfig.load(f)
    assert (c.subnet, c.bridge, c.mtu, c.dns) == ("10.90.0.0/16", "br-x", 1400, ("10.90.255.53",))


@pytest.mark.parametrize("body", ['subnet = "nope"', "mtu = 10", 'mtu = "1500"', "colour = 1",
                                  'dns = ["x"]', 'bridge = "a-very-long-bridge-name"'])
def test_config_rejects(tmp_path: Path, body: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(f"[network]\n{body}\n")
    with pytest.raises(InvalidArgument):
        NetworkConfig.load(f)


def test_hosts_rendering() -> None:
    text = hosts.render_hosts(
        own=[hosts.HostEntry("10.1.0.3", ("web", "web", "www"))],
        add_hosts=[("db.local", "10.1.0.9")],
        links=[("db", "database", "10.1.0.2"), ("cache", "cache", "10.1.0.4")],
        members=[hosts.HostEntry("10.1.0.5", ("api", "backend"))])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.1.0.9\tdb.local" in lines
    assert "10.1.0.2\tdatabase db" in lines
    assert "10.1.0.4\tcache" in lines
    assert "10.1.0.5\tapi backend" in lines
    assert lines[-1] == "10.1.0.3\tweb www"


def test_resolv_drops_loopback_and_uses_config_fallback() -> None:
    host = "nameserver 127.0.0.53\nnameserver ::1\nsearch a.test b.test\noptions ndots:2\n"
    out = hosts.render_resolv(host, dns=[], search=[], options=[], fallback=["10.9.9.9"],
                              keep_loopback=False)
    assert out == "nameserver 10.9.9.9\nsearch a.test b.test\noptions ndots:2\n"
    # Without a configured fallback there is no nameserver at all, never a public one.
    out = hosts.render_resolv(host, dns=[], search=[], options=[], fallback=[],
                              keep_loopback=False)
    assert "nameserver" not in out
    out = hosts.render_resolv("nameserver 10.0.0.1\nnameserver 127.0.0.1\n", dns=[], search=[],
                              options=[], fallback=[], keep_loopback=False)
    assert out == "nameserver 10.0.0.1\n"
    out = hosts.render_resolv(host, dns=["10.7.7.7"], search=["c.test"], options=["rotate"],
                              fallback=["10.9.9.9"], keep_loopback=False)
    assert out == "nameserver 10.7.7.7\nsearch c.test\noptions rotate\n"
    out = hosts.render_resolv(host, dns=[], search=[], options=[], fallback=[],
                              keep_loopback=True)
    assert out.startswith("nameserver 127.0.0.53\nnameserver ::1\n")


def test_rewrite_in_place_keeps_inode(tmp_path: Path) -> None:
    p = tmp_path / "hosts"
    hosts.write_new(p, "one\n" * 100)
    ino = p.stat().st_ino
    assert hosts.rewrite_in_place(p, "two\n")
    assert p.read_text() == "two\n" and p.stat().st_ino == ino
    assert not hosts.rewrite_in_place(tmp_path / "gone", "x")
    assert not (tmp_path / "gone").exists()


def _net(subnet: str = "10.5.0.0/29") -> NetworkRecord:
    return NetworkRecord(name="n", id="0" * 64, bridge="b", subnet=subnet, gateway="10.5.0.1")


def test_ipam_round_robin_and_exhaustion(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path)
    net = _net()
    got = [ipam.allocate(net, f"{i:064x}", f"c{i}", ()) for i in range(5)]
    assert got == ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
    with pytest.raises(Conflict):
        ipam.allocate(net, "f" * 64, "x", ())
    assert ipam.release("n", f"{1:064x}")
    # A released address comes back only after the others were tried.
    assert ipam.allocate(net, "f" * 64, "x", ()) == "10.5.0.3"
    with pytest.raises(Conflict):
        ipam.allocate(net, "f" * 64, "x", ())
    assert not ipam.release("n", "e" * 64)
    assert {m.name for m in ipam.members("n")} == {"c0", "c2", "c3", "c4", "x"}


def test_ipam_concurrent_threads(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam")
    lock = StateLock(tmp_path / ".lock")
    net = _net("10.5.0.0/24")
    got: list[str] = []

    def one(i: int) -> None:
        with lock.hold():
            got.append(ipam.allocate(net, f"{i:064x}", f"c{i}", ()))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 50 and len(set(got)) == 50


def test_network_store(tmp_path: Path) -> None:
    ns = NetworkStore(tmp_path, NetworkConfig(subnet="10.78.0.0/24"))
    a = ns.create("a", None, None, False, {"k": "v"})
    assert a.subnet == "10.78.1.0/24" and a.gateway == "10.78.1.1"
    b = ns.create("b", "10.50.0.0/16", "10.50.0.254", True, {})
    assert (b.gateway, b.internal) == ("10.50.0.254", True)
    with pytest.raises(Conflict):
        ns.create("a", None, None, False, {})
    with pytest.raises(Conflict):
        ns.create("c", "10.50.3.0/24", None, False, {})
    with pytest.raises(Conflict):
        ns.create("host", None, None, False, {})
    with pytest.raises(InvalidArgument):
        ns.create("bad/name", None, None, False, {})
    with pytest.raises(InvalidArgument):
        ns.create("d", "10.51.0.0/24", "10.52.0.1", False, {})
    assert ns.get(a.id[:12]) == a
    assert [n.name for n in ns.all()] == ["a", "b"]


def test_write_json_is_atomic(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    write_json(p, {"a": 1})
    write_json(p, {"a": 2})
    assert read_json(p) == {"a": 2}
    assert os.listdir(tmp_path) == ["x.json"]


@pytest.mark.parametrize("kwargs", [
    {"container_id": "xyz"},
    {"mode": "bogus"},
    {"mode": "container"},
    {"mode": "host", "publish": [PortMapping("", 80, 80)]},
    {"publish": [PortMapping("", 80, 80, "sctp")]},
    {"publish": [PortMapping("", 0, 80, "tcp", 3)]},
    {"publish": [PortMapping("", 65535, 80, "tcp", 2)]},
    {"networks": ["a", "a"]},
    {"hostname": "bad host"},
    {"mac": "zz"},
    {"aliases": ["evil\n10.0.0.1 bank"]},
    {"links": [("db", "db", "not-an-ip")]},
    {"add_hosts": [("a b", "10.0.0.1")]},
    {"dns": ["dns.example"]},
    {"dns_search": ["a b"]},
    {"publish": [PortMapping("localhost", 80, 80)]},
    {"publish": [PortMapping("::1", 80, 80)]},
])
def test_request_validation(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"container_id": CID, "name": "c", "hostname": "h"}
    args.update(kwargs)
    with pytest.raises(InvalidArgument):
        AttachRequest(**args).validate()  # type: ignore[arg-type]


def test_port_range_expands() -> None:
    assert PortMapping("", 8000, 80, "udp", 3).expand() == [
        PortMapping("", 8000, 80, "udp"), PortMapping("", 8001, 81, "udp"),
        PortMapping("", 8002, 82, "udp")]


def test_network_store_avoids_routed_subnets(tmp_path: Path) -> None:
    import ipaddress

    ns = NetworkStore(tmp_path, NetworkConfig(user_subnets="10.60.0.0/16"))
    lan = [ipaddress.IPv4Network("10.60.0.0/23")]
    assert ns.create("a", None, None, False, {}, routed=lan).subnet == "10.60.2.0/24"
    with pytest.raises(Conflict, match="routed by the host"):
        ns.create("b", "10.60.1.0/24", None, False, {}, routed=lan)
