"""`network create` and `network connect` with docker's flags: several subnets, gateways,
ranges and auxiliary addresses matched to their subnet; a fixed address at connect."""

from __future__ import annotations

import json
import uuid

from tests.integration.conftest import sdc


def ok(*args: str) -> str:
    r = sdc(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_network_create_and_connect_flags(busybox: str, name: str) -> None:
    net = f"n-{uuid.uuid4().hex[:8]}"
    try:
        ok("network", "create", "--subnet", "10.79.5.0/24", "--gateway", "10.79.5.254",
           "--ip-range", "10.79.5.128/25", "--aux-address", "router=10.79.5.129",
           "--ipv6", "--subnet", "fd00:79::/64", "--label", "team=a", net)
        doc = json.loads(ok("network", "inspect", net))[0]
        v4 = next(c for c in doc["IPAM"]["Config"] if c["Subnet"] == "10.79.5.0/24")
        assert v4["Gateway"] == "10.79.5.254" and v4["IPRange"] == "10.79.5.128/25"
        assert v4["AuxiliaryAddresses"] == {"router": "10.79.5.129"}
        assert doc["EnableIPv6"] is True and doc["Labels"] == {"team": "a"}
        assert any(c["Subnet"] == "fd00:79::/64" for c in doc["IPAM"]["Config"])
        # A created container connected with a fixed address gets it when it starts.
        ok("create", "--name", name, busybox, "sleep", "100")
        ok("network", "connect", "--ip", "10.79.5.200", "--alias", "db", net, name)
        ok("start", name)
        addrs = ok("exec", name, "ip", "-4", "-o", "addr", "show")
        assert "10.79.5.200/24" in addrs, addrs
        settings = json.loads(ok("inspect", name))[0]["NetworkSettings"]["Networks"][net]
        assert settings["IPAMConfig"]["IPv4Address"] == "10.79.5.200"
        assert "db" in settings["Aliases"]
    finally:
        sdc("rm", "-f", name)
        sdc("network", "rm", net)
    assert sdc("network", "inspect", net).returncode != 0


def test_network_create_refuses_what_docker_refuses(daemon: None) -> None:
    for args, why in ((["--gateway", "10.79.6.1"], "corresponding subnet"),
                      (["--subnet", "10.79.6.0/24", "--gateway", "10.79.7.1"],
                       "no matching subnet for gateway 10.79.7.1"),
                      (["--subnet", "10.79.6.0/24", "--ip-range", "10.79.6.0/26",
                        "--ip-range", "10.79.6.64/26"], "multiple ranges"),
                      (["--subnet", "ten"], "invalid subnet 'ten'")):
        net = f"n-{uuid.uuid4().hex[:8]}"
        r = sdc("network", "create", *args, net)
        assert r.returncode == 1 and why in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert sdc("network", "inspect", net).returncode != 0


def test_network_names_as_docker_takes_them(daemon: None) -> None:
    """docker takes "test 01" (docker-py's suite makes one); a name that could not
    name a file of the store is refused in one line."""
    name = f"test {uuid.uuid4().hex[:6]}"
    try:
        ok("network", "create", name)
        assert json.loads(ok("network", "inspect", name))[0]["Name"] == name
        assert name in ok("network", "ls", "--format", "{{.Name}}").splitlines()
    finally:
        sdc("network", "rm", name)
    assert sdc("network", "inspect", name).returncode != 0
    for bad in ("a/b", ".hidden", " lead"):
        r = sdc("network", "create", bad)
        assert r.returncode == 1 and "invalid network name" in r.stderr, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


def test_predefined_host_and_none_networks(busybox: str, name: str) -> None:
    """`host` and `none` are listed and inspected as dockerd shows them, and cannot be
    removed or connected."""
    from tests.api.apiutil import docker

    fmt = "{{.Name}} {{.Driver}} {{.Scope}}"
    ours = ok("network", "ls", "--format", fmt).splitlines()
    assert {"bridge bridge local", "host host local", "none null local"} <= set(ours)
    assert docker("network", "ls", "--format", fmt).stdout.splitlines() == ours
    builtin = ok("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}")
    assert builtin.splitlines() == ["bridge", "host", "none"]
    ok("run", "-d", "--name", name, "--network", "none", busybox, "sleep", "100")
    cid = json.loads(ok("inspect", name))[0]["Id"]
    none = json.loads(ok("network", "inspect", "none"))[0]
    assert none["Driver"] == "null" and none["IPAM"]["Config"] == []
    assert none["Containers"][cid]["Name"] == name
    assert json.loads(ok("network", "inspect", none["Id"][:12]))[0]["Name"] == "none"
    for args in (("rm", "host"), ("connect", "none", name), ("disconnect", "host", name)):
        r = sdc("network", *args)
        assert r.returncode == 1 and "pre-defined network" in r.stderr, (args, r.stderr)
    assert "host" in ok("network", "ls", "--format", "{{.Name}}").splitlines()
    r = sdc("network", "create", "host")
    assert r.returncode == 1, r.stderr
