"""Bridge, none, host and container modes; reachability and names (in the box)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sdcontainer.errors import Conflict
from sdcontainer.network import AttachRequest

from .conftest import Env, new_id
from .workload import httpd, ip_json, wget

pytestmark = pytest.mark.netbox


def test_bridge_attach_sets_up_namespace(env: Env) -> None:
    a = env.mgr.attach(AttachRequest(new_id(), "c1", "host1"))
    assert a.netns_path and Path(a.netns_path).exists()
    assert a.ip and a.ip.startswith(f"10.{100 + env.n}.0.")
    assert a.gateway == f"10.{100 + env.n}.0.1"
    inside = ip_json(a.netns_path, "-o", "addr")
    assert f"{a.ip}/24" in inside and "127.0.0.1/8" in inside
    assert f"default via {a.gateway} dev eth0" in ip_json(a.netns_path, "route")
    link = ip_json(a.netns_path, "link", "show", "eth0")
    assert "mtu 1500" in link and a.mac in link and "UP" in link
    host_if = a.interfaces[0].host_ifname
    assert f"master {env.config.bridge}" in ip_json(None, "link", "show", host_if)
    assert Path(a.hostname_path).read_text() == "host1\n"
    assert f"{a.ip}\thost1 c1" in Path(a.hosts_path).read_text()
    resolv = Path(a.resolv_path).read_text()
    assert resolv == "nameserver 10.254.0.53\nsearch example.test\n"


def test_container_to_container_by_ip(env: Env, tmp_path: Path) -> None:
    wanted = f"10.{100 + env.n}.0.77"
    a = env.mgr.attach(AttachRequest(new_id(), "web", "web", ip=wanted, mac="02:00:00:00:00:77"))
    assert (a.ip, a.mac) == (wanted, "02:00:00:00:00:77")
    with pytest.raises(Conflict, match="in use"):
        env.mgr.attach(AttachRequest(new_id(), "dup", "dup", ip=wanted))
    b = env.mgr.attach(AttachRequest(new_id(), "client", "client"))
    assert a.ip != b.ip
    with httpd(a.netns_path or "", tmp_path / "www", text="from-web"):
        assert wget(b.netns_path, f"http://{a.ip}/") == "from-web"
        # And from the host side (the box), by the container's address.
        assert wget(None, f"http://{a.ip}/") == "from-web"


def test_none_mode_has_only_lo(env: Env) -> None:
    a = env.mgr.attach(AttachRequest(new_id(), "lonely", "lonely", mode="none"))
    assert a.netns_path and a.ip is None
    links = ip_json(a.netns_path, "-o", "link").splitlines()
    assert len(links) == 1 and "lo:" in links[0] and "UP" in links[0]
    assert ip_json(a.netns_path, "route").strip() == ""
    env.mgr.detach(a.container_id)
    assert not Path(a.netns_path).exists()


def test_host_mode_leaves_namespace_alone(env: Env) -> None:
    a = env.mgr.attach(AttachRequest(new_id(), "h", "h", mode="host",
                                     add_hosts=[("extra.test", "10.1.2.3")]))
    assert a.netns_path is None and a.interfaces == ()
    assert "10.1.2.3\textra.test" in Path(a.hosts_path).read_text()
    # Sharing the host's namespace, the host's loopback resolver is usable.
    assert "nameserver 127.0.0.53" in Path(a.resolv_path).read_text()


def test_container_mode_shares_target(env: Env, tmp_path: Path) -> None:
    web = env.mgr.attach(AttachRequest(new_id(), "web", "webhost"))
    assert web.netns_path
    side = env.mgr.attach(AttachRequest(new_id(), "side", "side", mode="container",
                                        join_netns=web.netns_path))
    assert side.netns_path == web.netns_path
    assert side.hosts_path == web.hosts_path and side.ip == web.ip
    with httpd(side.netns_path, tmp_path / "www", text="same-ns"):
        assert wget(side.netns_path, "http://127.0.0.1:80/") == "same-ns"
    env.mgr.detach(side.container_id)
    # Detaching the joiner leaves the target alone.
    assert Path(web.netns_path).exists() and Path(web.hosts_path).exists()


def _resolve_with_hosts(netns: str, hosts_file: str, url: str) -> str | None:
    """wget URL from NETNS with HOSTS_FILE mounted on /etc/hosts, as in a container."""
    script = ('mount --bind "$1" /etc/hosts && '
              'exec nsenter --net="$2" timeout 2 busybox wget -qO- "$3"')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", hosts_file, netns, url],
                          capture_output=True, text=True, check=False, timeout=10)
    return proc.stdout if proc.returncode == 0 else None


def test_user_network_names_kept_current(env: Env, tmp_path: Path) -> None:
    env.mgr.create_network("appnet")
    api = env.mgr.attach(AttachRequest(new_id(), "api", "api", networks=["appnet"],
                                       aliases=["backend"]))
    client = env.mgr.attach(AttachRequest(new_id(), "client", "client", networks=["appnet"]))
    assert api.netns_path and client.netns_path
    inode = os.stat(api.hosts_path).st_ino
    assert f"{api.ip}\tapi backend" in Path(client.hosts_path).read_text()
    # The member that came first learnt about the newcomer, in place.
    assert f"{client.ip}\tclient" in Path(api.hosts_path).read_text()
    assert os.stat(api.hosts_path).st_ino == inode
    with httpd(api.netns_path, tmp_path / "www", text="api"):
        assert _resolve_with_hosts(client.netns_path, client.hosts_path, "http://api/") == "api"
        assert _resolve_with_hosts(client.netns_path, client.hosts_path,
                                   "http://backend/") == "api"
    env.mgr.detach(client.container_id)
    assert "client" not in Path(api.hosts_path).read_text()
    assert os.stat(api.hosts_path).st_ino == inode


def test_links_in_hosts(env: Env, tmp_path: Path) -> None:
    db = env.mgr.attach(AttachRequest(new_id(), "db", "db"))
    assert db.ip and db.netns_path
    app = env.mgr.attach(AttachRequest(new_id(), "app", "app", links=[("db", "database", db.ip)]))
    assert f"{db.ip}\tdatabase db" in Path(app.hosts_path).read_text()
    # On the default network members do not see each other by name (as docker).
    assert "\tapp" not in Path(db.hosts_path).read_text()
    with httpd(db.netns_path, tmp_path / "www", text="db"):
        assert _resolve_with_hosts(app.netns_path or "", app.hosts_path,
                                   "http://database/") == "db"


def test_user_networks_are_isolated(env: Env, tmp_path: Path) -> None:
    env.mgr.create_network("neta")
    env.mgr.create_network("netb")
    a = env.mgr.attach(AttachRequest(new_id(), "a", "a", networks=["neta"]))
    b = env.mgr.attach(AttachRequest(new_id(), "b", "b", networks=["netb"]))
    a2 = env.mgr.attach(AttachRequest(new_id(), "a2", "a2", networks=["neta"]))
    d = env.mgr.attach(AttachRequest(new_id(), "d", "d"))
    with httpd(b.netns_path or "", tmp_path / "www", text="b"):
        assert wget(a.netns_path, f"http://{b.ip}/", timeout=1) is None
        assert wget(d.netns_path, f"http://{b.ip}/", timeout=1) is None
    with httpd(a.netns_path or "", tmp_path / "www2", text="a"):
        assert wget(a2.netns_path, f"http://{a.ip}/") == "a"
        assert wget(b.netns_path, f"http://{a.ip}/", timeout=1) is None
    assert "\tb" not in Path(a.hosts_path).read_text()


def test_two_networks_one_container(env: Env, tmp_path: Path) -> None:
    env.mgr.create_network("front")
    env.mgr.create_network("back")
    both = env.mgr.attach(AttachRequest(new_id(), "both", "both", networks=["front", "back"]))
    back = env.mgr.attach(AttachRequest(new_id(), "db", "db", networks=["back"]))
    assert [i.ifname for i in both.interfaces] == ["eth0", "eth1"]
    with httpd(back.netns_path or "", tmp_path / "www", text="db"):
        assert wget(both.netns_path, f"http://{back.ip}/") == "db"
    assert f"{both.interfaces[1].ip}\tboth" in Path(back.hosts_path).read_text()


def test_internal_network_has_no_way_out(env: Env, tmp_path: Path) -> None:
    env.mgr.create_network("sealed", internal=True)
    s1 = env.mgr.attach(AttachRequest(new_id(), "s1", "s1", networks=["sealed"]))
    s2 = env.mgr.attach(AttachRequest(new_id(), "s2", "s2", networks=["sealed"]))
    d = env.mgr.attach(AttachRequest(new_id(), "d", "d"))
    with httpd(d.netns_path or "", tmp_path / "www", text="d"):
        assert wget(s1.netns_path, f"http://{d.ip}/", timeout=1) is None
    with httpd(s1.netns_path or "", tmp_path / "www2", text="s1"):
        assert wget(s2.netns_path, f"http://{s1.ip}/") == "s1"


def test_connect_and_disconnect(env: Env, tmp_path: Path) -> None:
    env.mgr.create_network("late")
    member = env.mgr.attach(AttachRequest(new_id(), "member", "member", networks=["late"]))
    d = env.mgr.attach(AttachRequest(new_id(), "d", "d"))
    inode = os.stat(d.hosts_path).st_ino
    d2 = env.mgr.connect(d.container_id, "late", aliases=["dee"])
    assert [i.ifname for i in d2.interfaces] == ["eth0", "eth1"]
    late_ip = d2.interfaces[1].ip
    assert f"{late_ip}\td dee" in Path(member.hosts_path).read_text()
    assert f"{member.ip}\tmember" in Path(d.hosts_path).read_text()
    assert os.stat(d.hosts_path).st_ino == inode
    with httpd(member.netns_path or "", tmp_path / "www", text="member"):
        assert wget(d.netns_path, f"http://{member.ip}/") == "member"
    # Off the default network: eth0 goes and the default route follows eth1.
    d3 = env.mgr.disconnect(d.container_id, "bridge")
    assert [i.ifname for i in d3.interfaces] == ["eth1"] and d3.ip == late_ip
    assert "eth0" not in ip_json(d.netns_path, "-o", "link")
    assert f"default via {d3.gateway} dev eth1" in ip_json(d.netns_path, "route")
    assert env.mgr.members("bridge") == []
    env.mgr.disconnect(d.container_id, "late")
    assert "\td dee" not in Path(member.hosts_path).read_text()
    env.mgr.detach(d.container_id)
    assert "sdcv" + d.container_id[:8] not in ip_json(None, "-o", "link")


def test_auto_subnet_avoids_host_routes(env: Env) -> None:
    dummy = f"sdctdum{env.n}"
    pool = env.config.user_subnets.split("/")[0].rsplit(".", 2)[0]
    subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{pool}.0.1/24", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        assert env.mgr.create_network("routed").subnet == f"{pool}.1.0/24"
    finally:
        subprocess.run(["ip", "link", "del", dummy], check=False)
