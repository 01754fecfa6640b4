"""Per-network endpoint settings (issue 18) through the daemon's REST API: a fixed
address, MAC and aliases at create, connecting a stopped container, legacy links'
environment and their removal.  Runs in the box (a real sdcontainerd); every address
is one the test gives out inside the box."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcontainer.engine.networking import (
    ContainerNetworking,
    plan,
    record_connect,
    record_disconnect,
)
from sdcontainer.engine.records import Container
from sdcontainer.errors import Conflict, NotFound
from sdcontainer.model.spec import ContainerConfig, EndpointSpec
from sdcontainer.network import NetworkRecord
from sdcontainer.network.ipam import Ipam
from tests.api.apiutil import DOCKER_HOST, api
from tests.integration import conftest as integration
from tests.integration.conftest import sdc

docker = pytest.importorskip("docker", reason="docker-py comes with tools/install-deps")

V = "/v1.43"
# The end-to-end suite's fixtures: a running sdcontainerd and the busybox image.
daemon = integration.daemon
busybox = integration.busybox


@pytest.fixture
def client(daemon: None) -> Iterator[Any]:
    c = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    yield c
    c.close()


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Container and network names made by the test, removed afterwards."""
    made: list[str] = []
    yield made
    for n in reversed(made):
        sdc("rm", "-f", n)
        api("DELETE", f"{V}/networks/{n}")


def new_name(made: list[str]) -> str:
    n = f"ep-{uuid.uuid4().hex[:8]}"
    made.append(n)
    return n


def create(name: str, body: dict[str, Any]) -> str:
    status, doc, _ = api("POST", f"{V}/containers/create?name={name}", body)
    assert status == 201, doc
    return str(doc["Id"])


def start(name: str) -> None:
    status, doc, _ = api("POST", f"{V}/containers/{name}/start")
    assert status == 204, doc


def inspect(name: str) -> dict[str, Any]:
    status, doc, _ = api("GET", f"{V}/containers/{name}/json")
    assert status == 200, doc
    return dict(doc)


def run_in(client: Any, name: str, *argv: str) -> str:
    code, out = client.containers.get(name).exec_run(list(argv))
    assert code == 0, out
    return str(out.decode())


def net_record(name: str, subnet: str = "10.9.0.0/24", **kw: Any) -> NetworkRecord:
    return NetworkRecord(name=name, id=name[0] * 64, bridge="sdcbx", subnet=subnet,
                         gateway=subnet.replace("0/24", "1"), **kw)


def test_connect_and_disconnect_while_stopped_are_recorded() -> None:
    cfg = ContainerConfig(image="x", network_mode="bridge", aliases=["a"],
                          mac="02:00:00:00:00:01")
    bridge, extra = net_record("bridge"), net_record("extra")
    record_connect(cfg, extra, EndpointSpec("extra", aliases=["x"], ip="10.9.0.5"))
    specs = plan(cfg)
    assert [(e.network, e.aliases, e.ip, e.mac) for e in specs] == [
        ("bridge", ["a"], "", "02:00:00:00:00:01"), ("extra", ["x"], "10.9.0.5", "")]
    # Leaving the first network makes the next one first; leaving the last, mode none.
    record_disconnect(cfg, bridge)
    assert cfg.network_mode == "extra" and [e.network for e in plan(cfg)] == ["extra"]
    record_disconnect(cfg, extra)
    assert cfg.network_mode == "none" and plan(cfg) == []
    with pytest.raises(NotFound):
        record_disconnect(cfg, extra)
    record_connect(cfg, extra, EndpointSpec("extra"))
    assert cfg.network_mode == "extra"


def test_link_env_is_dockers() -> None:
    db = Container("d" * 64, "db", "", ContainerConfig(
        image="x", env=["PATH=/bin", "FOO=1"], exposed_ports=["80/udp", "5432/tcp", "80/tcp"]))
    db.network = {"interfaces": [{"ip": "10.9.0.7"}]}
    app = Container("a" * 64, "app", "", ContainerConfig(image="x", links=["db:my-db"]))
    nets = ContainerNetworking(None, {"db": db}.__getitem__)  # type: ignore[arg-type]
    assert nets.link_env(app) == [
        "MY_DB_PORT=tcp://10.9.0.7:80",
        "MY_DB_PORT_80_TCP=tcp://10.9.0.7:80", "MY_DB_PORT_80_TCP_ADDR=10.9.0.7",
        "MY_DB_PORT_80_TCP_PORT=80", "MY_DB_PORT_80_TCP_PROTO=tcp",
        "MY_DB_PORT_80_UDP=udp://10.9.0.7:80", "MY_DB_PORT_80_UDP_ADDR=10.9.0.7",
        "MY_DB_PORT_80_UDP_PORT=80", "MY_DB_PORT_80_UDP_PROTO=udp",
        "MY_DB_PORT_5432_TCP=tcp://10.9.0.7:5432", "MY_DB_PORT_5432_TCP_ADDR=10.9.0.7",
        "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
        "MY_DB_NAME=/app/my-db", "MY_DB_ENV_FOO=1"]


def test_ip_range_and_aux_addresses_bound_allocation(tmp_path: Path) -> None:
    net = net_record("ranged", ip_range="10.9.0.128/30", aux_addresses={"r": "10.9.0.129"})
    ipam = Ipam(tmp_path)
    got = [ipam.allocate(net, f"{i:064x}", f"c{i}", ()) for i in range(3)]
    assert got == ["10.9.0.128", "10.9.0.130", "10.9.0.131"]
    with pytest.raises(Conflict):
        ipam.allocate(net, f"{9:064x}", "c9", ())
    # A fixed address may be anywhere in the subnet.
    assert ipam.allocate(net, f"{8:064x}", "c8", (), "10.9.0.20") == "10.9.0.20"


@pytest.mark.box
def test_endpoint_settings_and_stopped_connect(client: Any, busybox: str,
                                               names: list[str]) -> None:
    net = new_name(names)
    status, created, _ = api("POST", f"{V}/networks/create", {
        "Name": net, "IPAM": {"Config": [{
            "Subnet": "10.91.7.0/24", "IPRange": "10.91.7.128/25",
            "AuxiliaryAddresses": {"router": "10.91.7.128"}}]}})
    assert status == 201, created
    a, b = new_name(names), new_name(names)
    mac = "02:42:0a:5b:07:17"
    a_id = create(a, {"Image": busybox, "Cmd": ["sleep", "300"],
                      "HostConfig": {"NetworkMode": net},
                      "NetworkingConfig": {"EndpointsConfig": {net: {
                          "Aliases": ["svc-a"], "MacAddress": mac,
                          "IPAMConfig": {"IPv4Address": "10.91.7.23"},
                          "DriverOpts": {"com.example.x": "1"}}}}})
    # Created, not started: inspect already shows what it asked for.
    ep = inspect(a)["NetworkSettings"]["Networks"][net]
    assert ep["MacAddress"] == mac and ep["NetworkID"] == created["Id"]
    assert ep["IPAMConfig"] == {"IPv4Address": "10.91.7.23"} and ep["IPAddress"] == ""
    # An undeclared network is a 404, as in docker.
    status, doc, _ = api("POST", f"{V}/containers/create", {
        "Image": busybox, "Cmd": ["true"],
        "NetworkingConfig": {"EndpointsConfig": {"no-such-net": {}}}})
    assert status == 404, doc
    start(a)
    addr = run_in(client, a, "ip", "-o", "addr", "show", "eth0")
    assert "inet 10.91.7.23/24" in addr
    assert run_in(client, a, "cat", "/sys/class/net/eth0/address").strip() == mac
    ep = inspect(a)["NetworkSettings"]["Networks"][net]
    assert ep["IPAddress"] == "10.91.7.23" and ep["MacAddress"] == mac
    assert ep["Aliases"] == ["svc-a"] and ep["DriverOpts"] == {"com.example.x": "1"}
    assert ep["IPAMConfig"]["IPv4Address"] == "10.91.7.23"

    # B is created on the default network and connected to NET while stopped: it joins
    # both at start, its NET address from the IPRange (not the auxiliary one).
    b_id = create(b, {"Image": busybox, "Cmd": ["sleep", "300"]})
    status, doc, _ = api("POST", f"{V}/networks/{net}/connect",
                         {"Container": b, "EndpointConfig": {"Aliases": ["svc-b"]}})
    assert status == 200, doc
    assert set(inspect(b)["NetworkSettings"]["Networks"]) == {"bridge", net}
    start(b)
    b_net = inspect(b)["NetworkSettings"]["Networks"][net]
    last = int(b_net["IPAddress"].rsplit(".", 1)[1])
    assert b_net["IPAddress"].startswith("10.91.7.") and 128 < last < 255, b_net
    assert f"inet {b_net['IPAddress']}/24" in run_in(client, b, "ip", "-o", "addr")
    # Names on NET come from the hosts files: B reaches A by A's alias.
    assert "10.91.7.23" in run_in(client, b, "ping", "-c", "1", "-W", "5", "svc-a")
    assert "svc-b" in run_in(client, a, "cat", "/etc/hosts")
    status, doc, _ = api("GET", f"{V}/networks/{net}")
    members = doc["Containers"]
    assert set(members) == {a_id, b_id}
    assert members[a_id]["MacAddress"] == mac
    assert members[a_id]["IPv4Address"] == "10.91.7.23/24"
    assert doc["IPAM"]["Config"][0]["IPRange"] == "10.91.7.128/25"

    # Disconnected while stopped: the next start leaves NET out.
    sdc("stop", "-t", "0", b, check=True)
    status, doc, _ = api("POST", f"{V}/networks/{net}/disconnect", {"Container": b})
    assert status == 200, doc
    start(b)
    assert set(inspect(b)["NetworkSettings"]["Networks"]) == {"bridge"}
    assert "10.91.7." not in run_in(client, b, "ip", "-o", "addr")


@pytest.mark.box
def test_legacy_link_env_and_removal(client: Any, busybox: str, names: list[str]) -> None:
    db, app = new_name(names), new_name(names)
    create(db, {"Image": busybox, "Cmd": ["sleep", "300"], "Env": ["FOO=1"],
                "ExposedPorts": {"5432/tcp": {}}})
    start(db)
    db_ip = inspect(db)["NetworkSettings"]["IPAddress"]
    create(app, {"Image": busybox, "Cmd": ["sleep", "300"],
                 "HostConfig": {"Links": [f"{db}:my-db"]}})
    start(app)
    env = run_in(client, app, "env").splitlines()
    for var in (f"MY_DB_NAME=/{app}/my-db", f"MY_DB_PORT=tcp://{db_ip}:5432",
                f"MY_DB_PORT_5432_TCP=tcp://{db_ip}:5432", f"MY_DB_PORT_5432_TCP_ADDR={db_ip}",
                "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_ENV_FOO=1"):
        assert var in env, env
    assert f"{db_ip}\tmy-db {db}" in run_in(client, app, "cat", "/etc/hosts")
    # docker's link removal: DELETE /containers/PARENT/ALIAS?link=1.
    status, doc, _ = api("DELETE", f"{V}/containers/{app}/my-db?link=1")
    assert status == 204, doc
    assert inspect(app)["HostConfig"]["Links"] is None
    assert "my-db" not in run_in(client, app, "cat", "/etc/hosts")
    status, _, _ = api("DELETE", f"{V}/containers/{app}/my-db?link=1")
    assert status == 404


@pytest.mark.box
def test_ipv6_network(client: Any, busybox: str, names: list[str]) -> None:
    net = new_name(names)
    status, doc, _ = api("POST", f"{V}/networks/create", {"Name": "no-v6-pool",
                                                          "EnableIPv6": True})
    assert status == 400 and "IPv6 subnet" in doc["message"], doc
    status, created, _ = api("POST", f"{V}/networks/create", {
        "Name": net, "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:91:7::/64"}]}})
    assert status == 201, created
    status, doc, _ = api("GET", f"{V}/networks/{net}")
    assert doc["EnableIPv6"] is True
    assert doc["IPAM"]["Config"][1] == {"Subnet": "fd00:91:7::/64", "Gateway": "fd00:91:7::1"}
    a, b = new_name(names), new_name(names)
    create(a, {"Image": busybox, "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": net},
               "NetworkingConfig": {"EndpointsConfig": {net: {
                   "IPAMConfig": {"IPv6Address": "fd00:91:7::f00d"}}}}})
    create(b, {"Image": busybox, "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": net}})
    start(a)
    start(b)
    ep = inspect(a)["NetworkSettings"]["Networks"][net]
    assert ep["GlobalIPv6Address"] == "fd00:91:7::f00d" and ep["GlobalIPv6PrefixLen"] == 64
    assert ep["IPAMConfig"]["IPv6Address"] == "fd00:91:7::f00d"
    assert ep["IPv6Gateway"] == "fd00:91:7::1" and ep["IPAddress"]  # IPv4 beside it
    assert "inet6 fd00:91:7::f00d/64" in run_in(client, a, "ip", "-o", "-6", "addr")
    b_ip6 = inspect(b)["NetworkSettings"]["Networks"][net]["GlobalIPv6Address"]
    assert b_ip6 == "fd00:91:7::2"
    # Across the bridge, and to the host's end of it.
    run_in(client, a, "ping", "-6", "-c", "1", "-W", "5", b_ip6)
    run_in(client, b, "ping", "-6", "-c", "1", "-W", "5", "fd00:91:7::1")
