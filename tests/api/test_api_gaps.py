"""Docker API endpoints that had no test: commit of a running container, distribution,
the prunes' SpaceReclaimed, IpcMode host, and the start-up check of [network] subnet."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import urllib.parse
import uuid
from pathlib import Path

from tests.integration.conftest import SOCKET, VENV_BIN, sh, systemctl, wait_for

from .apiutil import api, docker

# A few hundred KiB in the container's upper directory: something to reclaim.
WRITE = "dd if=/dev/zero of=/data bs=1k count=256 2>/dev/null"


def test_commit_running_with_pause(busybox: str, name: str) -> None:
    docker("run", "-d", "--name", name, busybox, "sh", "-c", f"{WRITE}; exec sleep 100",
           check=True)
    assert wait_for(lambda: docker("exec", name, "test", "-s", "/data").returncode == 0)
    params = urllib.parse.urlencode({"container": name, "author": "Ada <ada@example.org>",
                                     "comment": "saved while running", "pause": "true"})
    status, body, _ = api("POST", f"/commit?{params}")
    # Committed even where the freezer is missing (hybrid cgroups): unpaused, as docker.
    assert status == 201, body
    image = body["Id"]
    try:
        status, info, _ = api("GET", f"/images/{image}/json")
        assert status == 200, info
        assert (info["Author"], info["Comment"]) == ("Ada <ada@example.org>",
                                                     "saved while running")
        status, c, _ = api("GET", f"/containers/{name}/json")
        assert (c["State"]["Running"], c["State"]["Paused"]) == (True, False)
        # The commit is untagged: a dangling image, which image prune reclaims.
        docker("rm", "-f", name, check=True)
        filters = urllib.parse.quote(json.dumps({"dangling": ["true"]}))
        status, pruned, _ = api("POST", f"/images/prune?filters={filters}")
        assert status == 200, pruned
        assert pruned["SpaceReclaimed"] > 0, pruned
        assert {"Deleted": image} in (pruned["ImagesDeleted"] or []), pruned
    finally:
        docker("rmi", "-f", image)


def test_distribution_from_a_local_registry(busybox: str, tmp_path: Path) -> None:
    from tests.images.conftest import _start_registry

    reg = _start_registry(tmp_path / "reg", None)
    ref = f"{reg.host}/gaps/bb:v1"
    try:
        assert docker("tag", busybox, ref).returncode == 0
        r = docker("push", ref)
        assert r.returncode == 0, r.stderr
        status, dist, _ = api("GET", f"/distribution/{ref}/json")
        assert status == 200, dist
        assert dist["Descriptor"]["digest"].startswith("sha256:")
        assert dist["Descriptor"]["size"] > 0
        assert {"os": "linux"}.items() <= dist["Platforms"][0].items(), dist
        status, body, _ = api("GET", f"/distribution/{reg.host}/gaps/none:v1/json")
        assert status == 404, body
    finally:
        docker("rmi", ref)
        reg.proc.terminate()
        reg.proc.wait(10)


def test_container_and_network_prune(busybox: str, name: str) -> None:
    label = f"gaps={name}"  # only ours: other tests' stopped containers stay
    docker("run", "--name", name, "--label", label, busybox, "sh", "-c", WRITE, check=True)
    cid = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    filters = urllib.parse.quote(json.dumps({"label": [label]}))
    status, pruned, _ = api("POST", f"/containers/prune?filters={filters}")
    assert status == 200, pruned
    assert pruned["ContainersDeleted"] == [cid], pruned
    assert pruned["SpaceReclaimed"] > 0, pruned
    assert docker("inspect", name).returncode != 0
    net = f"gaps-{uuid.uuid4().hex[:6]}"
    docker("network", "create", net, check=True)
    try:
        status, pruned, _ = api("POST", "/networks/prune")
        assert status == 200, pruned
        assert net in (pruned["NetworksDeleted"] or []), pruned
        assert docker("network", "inspect", net).returncode != 0
    finally:
        docker("network", "rm", net)


def test_ipc_mode_host(busybox: str) -> None:
    r = docker("run", "--rm", "--ipc", "host", busybox, "readlink", "/proc/self/ns/ipc")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == os.readlink("/proc/self/ns/ipc")
    r = docker("run", "--rm", busybox, "readlink", "/proc/self/ns/ipc")
    assert r.stdout.strip() != os.readlink("/proc/self/ns/ipc")


def test_route_clash_stops_the_daemon(daemon: None) -> None:
    status, bridge, _ = api("GET", "/networks/bridge")
    assert status == 200, bridge
    subnet = ipaddress.ip_network(bridge["IPAM"]["Config"][0]["Subnet"])
    inside = next(subnet.subnets(new_prefix=max(subnet.prefixlen, 28)))
    dev = "sdcgapclash"  # a veth pair: the box has no dummy driver
    sh("ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p")
    try:
        for d in (dev, dev + "p"):
            sh("ip", "link", "set", d, "up")
        sh("ip", "route", "add", str(inside), "dev", dev)
        systemctl("stop", "sdcontainerd.service", check=True)
        r = subprocess.run([str(VENV_BIN / "sdcontainerd")], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "[network] subnet" in lines[0], r.stderr
        assert str(inside) in lines[0] and dev in lines[0], r.stderr
    finally:
        sh("ip", "link", "del", dev, check=False)
        systemctl("start", "sdcontainerd.service", check=True)
        assert wait_for(lambda: os.path.exists(SOCKET) and api("GET", "/_ping")[0] == 200)
