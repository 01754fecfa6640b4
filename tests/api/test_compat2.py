"""Docker compatibility, part 2 (issue 18): routing, push/pull by digest, image
history and filters, `docker update`, exec framing, info/df and network options."""

from __future__ import annotations

import base64
import json
import socket
import struct
import urllib.parse
from pathlib import Path

from tests.integration.conftest import unit_property

from .apiutil import UnixConnection, api, docker


def raw(method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """Status, reason phrase and body of one request."""
    conn = UnixConnection(timeout=120)
    conn.request(method, path, body=body or None, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.reason, data


def q(filters: dict[str, list[str]]) -> str:
    return urllib.parse.quote(json.dumps(filters))


def stream_lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(x) for x in data.splitlines() if x.strip()]


def test_routes_push_pull_by_digest_history_filters(busybox: str, tmp_path: Path) -> None:
    from tests.images.conftest import _start_registry

    # Every endpoint reaches its handler; 405 and swarm's 503 as dockerd words them.
    status, _, body = raw("POST", "/v1.43/images/no-such/push")
    assert status == 404, body
    status, reason, _ = raw("PUT", "/v1.43/images/json")
    assert (status, reason) == (405, "Method Not Allowed")
    status, reason, body = raw("GET", "/v1.43/swarm")
    assert (status, reason) == (503, "Service Unavailable")
    assert b"This node is not a swarm manager" in body
    status, _, body = raw("GET", "/v1.43/services")
    assert status == 503

    reg = _start_registry(tmp_path / "reg", ("pusher", "s3cret"))
    ref = f"{reg.host}/compat/bb"
    auth = base64.urlsafe_b64encode(json.dumps(
        {"username": "pusher", "password": "s3cret", "serveraddress": reg.host}).encode()).decode()
    try:
        assert docker("tag", busybox, f"{ref}:v1").returncode == 0
        status, _, body = raw("POST", f"/v1.43/images/{ref}/push?tag=v1",
                              headers={"X-Registry-Auth": auth})
        msgs = stream_lines(body)
        assert status == 200 and not any("error" in m for m in msgs), msgs
        aux = next(m["aux"] for m in msgs if "aux" in m)
        assert isinstance(aux, dict) and aux["Tag"] == "v1"
        assert any(m.get("status") == "Pushed" for m in msgs), msgs
        # A second push skips what the registry has.
        _, _, body = raw("POST", f"/v1.43/images/{ref}/push?tag=v1",
                         headers={"X-Registry-Auth": auth})
        again = stream_lines(body)
        assert any(m.get("status") == "Layer already exists" for m in again), again
        assert not any(m.get("status") == "Pushed" for m in again), again
        # Without credentials the registry says no, in the stream.
        _, _, body = raw("POST", f"/v1.43/images/{ref}/push?tag=v1")
        assert any("error" in m for m in stream_lines(body))
        # Pull by digest, as the docker CLI sends it: fromImage=NAME&tag=sha256:...
        assert docker("rmi", f"{ref}:v1").returncode == 0
        status, _, body = raw("POST", f"/v1.43/images/create?fromImage={ref}&tag={aux['Digest']}",
                              headers={"X-Registry-Auth": auth})
        msgs = stream_lines(body)
        assert status == 200 and not any("error" in m for m in msgs), msgs
        status, img, _ = api("GET", f"/v1.43/images/{ref}@{aux['Digest']}/json")
        assert status == 200 and f"{ref}@{aux['Digest']}" in img["RepoDigests"]
    finally:
        reg.proc.terminate()
        reg.proc.wait(10)

    status, hist, _ = api("GET", f"/v1.43/images/{busybox}/history")
    assert status == 200 and hist[0]["Tags"] and hist[0]["Id"].startswith("sha256:")
    status, imgs, _ = api("GET", "/v1.43/images/json?filters=" +
                          q({"reference": [busybox]}))
    assert status == 200 and [i for i in imgs if f"{busybox}:latest" in i["RepoTags"]]
    status, imgs, _ = api("GET", "/v1.43/images/json?filters=" +
                          q({"reference": ["no-such-*"]}))
    assert status == 200 and imgs == []
    status, imgs, _ = api("GET", "/v1.43/images/json?filters=" + q({"dangling": ["x"]}))
    assert status == 400
    # A bad archive is an error in the load stream (docker-py's ImageLoadError).
    status, _, body = raw("POST", "/v1.43/images/load", b"abc",
                          {"Content-Type": "application/x-tar"})
    assert status == 200 and "errorDetail" in stream_lines(body)[0]


def test_update_exec_framing_info_df(busybox: str, name: str) -> None:
    assert docker("run", "-d", "--name", name, "-m", "64m", busybox, "sleep", "300").returncode == 0
    scope = f"sdcontainer-{name}.scope"
    assert unit_property(scope, "MemoryMax") == str(64 << 20)
    r = docker("update", "-m", "48m", "--memory-swap", "96m", "--cpus", "0.5",
               "--pids-limit", "50", "--restart", "on-failure:3", name)
    assert r.returncode == 0, r.stderr
    assert unit_property(scope, "MemoryMax") == str(48 << 20)
    assert unit_property(scope, "MemorySwapMax") == str(48 << 20)
    assert unit_property(scope, "CPUQuotaPerSecUSec") == "500ms"
    assert unit_property(scope, "TasksMax") == "50"
    status, doc, _ = api("GET", f"/v1.43/containers/{name}/json")
    hc = doc["HostConfig"]
    assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (48 << 20, 500_000_000, 50)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    status, body, _ = api("POST", f"/v1.43/containers/{name}/update", {"Memory": 1024})
    assert status == 400 and "Minimum memory limit" in body["message"]

    # The exec start request's Tty picks the framing: a tty session started with
    # Tty false comes framed as stdout.
    status, ex, _ = api("POST", f"/v1.43/containers/{name}/exec",
                        {"Cmd": ["printf", "framed"], "Tty": True, "AttachStdout": True})
    s = socket.socket(socket.AF_UNIX)
    s.connect("/run/sdcontainer/sdcontainer.sock")
    payload = json.dumps({"Detach": False, "Tty": False}).encode()
    s.sendall(f"POST /v1.43/exec/{ex['Id']}/start HTTP/1.1\r\nHost: x\r\nContent-Type: "
              f"application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, stream = data.partition(b"\r\n\r\n")
    assert b"application/vnd.docker.multiplexed-stream" in head
    kind, size = struct.unpack(">BxxxI", stream[:8])
    assert (kind, stream[8:8 + size]) == (1, b"framed")
    # A missing binary: the stream says so, the exec's exit code is 127.
    status, ex, _ = api("POST", f"/v1.43/containers/{name}/exec",
                        {"Cmd": ["/no/such/binary"], "AttachStdout": True})
    status, _, body = raw("POST", f"/v1.43/exec/{ex['Id']}/start", b'{"Detach": false}',
                          {"Content-Type": "application/json"})
    assert status == 200
    status, info, _ = api("GET", f"/v1.43/exec/{ex['Id']}/json")
    assert info["ExitCode"] == 127

    status, info, _ = api("GET", "/v1.43/info")
    assert info["Images"] >= 1 and info["Debug"] is False and info["ExperimentalBuild"] is False
    assert info["Swarm"]["LocalNodeState"] == "inactive" and info["ID"]
    status, df, _ = api("GET", "/v1.43/system/df")
    assert status == 200 and df["LayersSize"] > 0
    assert next(c for c in df["Containers"] if c["Names"] == [f"/{name}"])["SizeRootFs"] > 0
    assert [i for i in df["Images"] if i["Containers"] >= 1]
    # kill returns once the container is dead; rm -f of a just-exited one is a 204.
    status, _, _ = api("POST", f"/v1.43/containers/{name}/kill")
    assert status == 204
    status, doc, _ = api("GET", f"/v1.43/containers/{name}/json")
    assert doc["State"]["Running"] is False and doc["State"]["ExitCode"] == 137
    assert doc["NetworkSettings"]["Networks"], "networks are kept once it exits"
    status, _, _ = api("DELETE", f"/v1.43/containers/{name}?force=1")
    assert status == 204


def test_network_options_ipam_and_filters(busybox: str, name: str) -> None:
    net = f"{name}-net"
    body = {"Name": net, "Driver": "bridge", "Options": {"com.example.opt": "1"},
            "IPAM": {"Driver": "default", "Options": {"ipam.opt": "x"},
                     "Config": [{"Subnet": "10.78.211.0/24", "IPRange": "10.78.211.128/25",
                                 "Gateway": "10.78.211.1",
                                 "AuxiliaryAddresses": {"router": "10.78.211.2"}}]}}
    status, created, _ = api("POST", "/v1.43/networks/create", body)
    assert status == 201, created
    try:
        status, doc, _ = api("GET", f"/v1.43/networks/{net}")
        # Only the options given: docker-compose's second `up` compares them.
        assert doc["Options"] == {"com.example.opt": "1"}
        assert doc["IPAM"]["Options"] == {"ipam.opt": "x"}
        assert doc["IPAM"]["Config"][0]["IPRange"] == "10.78.211.128/25"
        assert doc["IPAM"]["Config"][0]["AuxiliaryAddresses"] == {"router": "10.78.211.2"}
        status, found, _ = api("GET", "/v1.43/networks?filters=" +
                               q({"id": [created["Id"][:12]]}))
        assert [n["Name"] for n in found] == [net]
        assert docker("create", "--name", name, busybox, "sleep", "300").returncode == 0
        r = docker("network", "connect", net, name)
        assert r.returncode == 0, r.stderr
        assert docker("start", name).returncode == 0
        status, doc, _ = api("GET", f"/v1.43/containers/{name}/json")
        ep = doc["NetworkSettings"]["Networks"][net]
        assert ep["NetworkID"] == created["Id"] and ep["IPAddress"].startswith("10.78.211.")
        assert {"IPAMConfig", "Links", "DriverOpts", "Aliases"} <= set(ep)
    finally:
        docker("rm", "-f", name)
        api("DELETE", f"/v1.43/networks/{net}")
