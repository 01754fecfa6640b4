"""Networking end to end: bridge (default), user networks, links, published ports,
host/none/container modes, cleanup.  Every address lives inside the box."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SOCKET, sdc, sh, systemctl, wait_for

SERVE = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && httpd -f -p 80 -h /www"


def web(name: str, *flags: str, image: str = "busybox") -> str:
    r = sdc("run", "-d", "--name", name, "--hostname", name, *flags, image, "sh", "-c", SERVE)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def ip_of(name: str) -> str:
    info = json.loads(sdc("inspect", name).stdout)[0]
    return str(info["NetworkSettings"]["IPAddress"])


def fetch(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """wget URL from a fresh container (FLAGS choose its network).  Not as PID 1: a
    namespace's init ignores timeout's SIGTERM."""
    return sdc("run", "--rm", "--init", *flags, "busybox", "timeout", "5", "wget", "-qO-", url,
               timeout=30)


def host_fetch(url: str) -> str:
    r = sh("timeout", "5", "busybox", "wget", "-qO-", url, check=False)
    return r.stdout


@pytest.fixture
def net() -> Iterator[str]:
    n = f"n{uuid.uuid4().hex[:6]}"
    yield n
    sdc("network", "rm", n)


def test_default_bridge(busybox: str, name: str) -> None:
    r = sdc("run", "--rm", busybox, "sh", "-c", "ip -4 -o addr show eth0; ip route")
    assert r.returncode == 0, r.stderr
    assert "10.77." in r.stdout and "default via 10.77.0.1" in r.stdout
    web(name)
    assert fetch(f"http://{ip_of(name)}/").stdout == f"hello-from-{name}\n"


def test_link_alias(busybox: str, name: str) -> None:
    web(name)
    r = fetch("http://database/", "--link", f"{name}:database")
    assert r.stdout == f"hello-from-{name}\n", r.stderr
    hosts = sdc("run", "--rm", "--link", name, busybox, "cat", "/etc/hosts").stdout
    assert name in hosts


def test_user_network_names_and_aliases(busybox: str, name: str, net: str) -> None:
    assert sdc("network", "create", "--subnet", "10.78.77.0/24", net).returncode == 0
    assert net in sdc("network", "ls").stdout
    web(name, "--network", net, "--network-alias", "backend")
    assert ip_of(name).startswith("10.78.77.")
    for host in (name, "backend"):
        r = fetch(f"http://{host}/", "--network", net)
        assert r.stdout == f"hello-from-{name}\n", (host, r.stderr)
    info = json.loads(sdc("network", "inspect", net).stdout)[0]
    assert any(c["Name"] == name for c in info["Containers"].values())
    r = sdc("network", "rm", net)
    assert r.returncode == 1 and "Conflict" not in r.stdout


def test_hosts_kept_current(busybox: str, name: str, net: str) -> None:
    sdc("network", "create", net, check=True)
    web(name, "--network", net)
    other = name + "-late"
    try:
        web(other, "--network", net)
        hosts = sdc("exec", name, "cat", "/etc/hosts").stdout
        assert other in hosts
        sdc("rm", "-f", other, check=True)
        assert other not in sdc("exec", name, "cat", "/etc/hosts").stdout
    finally:
        sdc("rm", "-f", other)


def test_not_across_user_networks(busybox: str, name: str, net: str) -> None:
    other_net = net + "b"
    sdc("network", "create", net, check=True)
    sdc("network", "create", other_net, check=True)
    try:
        web(name, "--network", net)
        r = fetch(f"http://{ip_of(name)}/", "--network", other_net)
        assert r.stdout == ""
        assert fetch(f"http://{name}/", "--network", other_net).stdout == ""
    finally:
        sdc("rm", "-f", name)
        sdc("network", "rm", other_net)


def test_published_ports(busybox: str, name: str) -> None:
    web(name, "-p", "18080:80", "-p", "127.0.0.1:18443:80/tcp")
    expect = f"hello-from-{name}\n"
    assert host_fetch("http://127.0.0.1:18080/") == expect
    assert host_fetch("http://127.0.0.1:18443/") == expect
    assert host_fetch("http://10.77.0.1:18080/") == expect
    # hairpin: another container reaches the published port through the host side
    assert fetch("http://10.77.0.1:18080/").stdout == expect
    # the 127.0.0.1 binding is not reachable from another network namespace
    assert fetch("http://10.77.0.1:18443/").stdout == ""
    out = sdc("port", name).stdout
    assert "80/tcp -> 0.0.0.0:18080" in out and "80/tcp -> 127.0.0.1:18443" in out
    assert "0.0.0.0:18080->80/tcp" in sdc("ps").stdout


UDP_SERVER = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
              "s.bind(('0.0.0.0', 53)); print(s.recvfrom(100)[0].decode(), flush=True)")


def test_published_udp(busybox: str, name: str) -> None:
    # Debian's busybox has no UDP tool: borrow the host's python3, read-only.
    sdc("run", "-d", "--name", name, "-p", "15353:53/udp", "-v", "/usr:/usr:ro",
        "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro", busybox,
        "/usr/bin/python3", "-c", UDP_SERVER, check=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(50):
            s.sendto(b"ping-udp", ("127.0.0.1", 15353))
            if sdc("logs", name).stdout:
                break
            time.sleep(0.1)
    assert wait_for(lambda: sdc("logs", name).stdout == "ping-udp\n")


def test_unpublished_port_not_reachable_from_host_port(busybox: str, name: str) -> None:
    web(name, "-p", "18081:80")
    assert host_fetch("http://127.0.0.1:80/") == ""


def test_taken_host_port_fails_cleanly(busybox: str, name: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 18099))
        s.listen()
        before_nft = sh("nft", "list", "table", "inet", "sdcontainer", check=False).stdout
        before_links = sh("ip", "-o", "link").stdout.count("sdcv")
        r = sdc("run", "-d", "--name", name, "-p", "18099:80", busybox, "sleep", "100")
        assert r.returncode == 125
        assert "18099" in r.stderr and "Traceback" not in r.stderr
        assert sh("ip", "-o", "link").stdout.count("sdcv") == before_links
        after_nft = sh("nft", "list", "table", "inet", "sdcontainer", check=False).stdout
        assert after_nft.count("dnat") == before_nft.count("dnat")


def test_host_none_container_modes(busybox: str, name: str) -> None:
    r = sdc("run", "--rm", "--network", "none", busybox, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"]
    host = sdc("run", "--rm", "--network", "host", busybox, "ip", "-o", "link").stdout
    assert "sdc0" in host
    web(name)
    r = fetch("http://127.0.0.1:80/", "--network", f"container:{name}")
    assert r.stdout == f"hello-from-{name}\n"


def test_network_flag_errors(busybox: str) -> None:
    r = sdc("run", "--rm", "--network", "none", "--network", "host", busybox, "true")
    assert r.returncode == 125 and "more than once" in r.stderr
    r = sdc("run", "--rm", "--network", "no-such-net", busybox, "true")
    assert r.returncode == 125 and "no-such-net" in r.stderr
    r = sdc("run", "--rm", "-p", "nonsense", busybox, "true")
    assert r.returncode == 125 and "publish" in r.stderr


def test_parallel_runs_get_distinct_addresses(busybox: str) -> None:
    names = [f"par-{uuid.uuid4().hex[:6]}" for _ in range(50)]
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(
                lambda n: sdc("run", "-d", "--name", n, busybox, "sleep", "60", timeout=120),
                names))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results][:3]
        ips = [ip_of(n) for n in names]
        assert len(set(ips)) == 50 and all(ips)
    finally:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: sdc("rm", "-f", n, timeout=120), names))
    assert sh("ip", "-o", "link").stdout.count("sdcv") == 0


def test_nothing_stale_after_kill_9(busybox: str, name: str) -> None:
    web(name, "-p", "18090:80")
    pid = json.loads(sdc("inspect", name).stdout)[0]["State"]["Pid"]
    main_pid = int(sh("systemctl", "show", "-p", "MainPID", "--value",
                      "sdcontainerd.service").stdout)
    os.kill(main_pid, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: sh("systemctl", "is-active", "sdcontainerd.service",
                               check=False).stdout.strip() == "active", 20)
    assert wait_for(lambda: os.path.exists(SOCKET) and sdc("ps").returncode == 0, 20)
    assert wait_for(lambda: json.loads(sdc("inspect", name).stdout)[0]["State"]["Status"]
                    == "exited", 20)
    assert sh("ip", "-o", "link").stdout.count("sdcv") == 0
    assert "18090" not in sh("nft", "list", "ruleset").stdout
    cid = json.loads(sdc("inspect", name).stdout)[0]["Id"]
    assert not list(Path("/var/lib/sdcontainer/networks/ipam").glob(f"*/{cid}.json"))
    systemctl("reset-failed", "sdcontainerd.service")
