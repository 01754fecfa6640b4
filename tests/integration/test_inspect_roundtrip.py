"""Inspect gives back what create was given (issue 18): configuration tools (compose,
Ansible) compare the two and recreate the container on any difference."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.apiutil import DOCKER_HOST, api

from .conftest import sdc


@pytest.fixture
def partner(name: str) -> Iterator[str]:
    """A second container's name, removed after the test."""
    yield f"{name}-p"
    sdc("rm", "-f", f"{name}-p")


def create(name: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, answer, _ = api("POST", f"/containers/create?name={name}", body)
    return status, answer


def run_in(name: str, *argv: str) -> str:
    r = sdc("exec", name, *argv)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_create_inspect_round_trip(busybox: str, name: str, partner: str,
                                   tmp_path: Path) -> None:
    assert create(partner, {"Image": busybox, "Cmd": ["sleep", "300"],
                            "HostConfig": {"IpcMode": "shareable"}})[0] == 201
    assert api("POST", f"/containers/{partner}/start")[0] == 204
    host_config: dict[str, Any] = {
        "Binds": [f"{tmp_path}:/data:rw", f"{tmp_path}:/ro:ro,rprivate", f"{tmp_path}:/plain",
                  f"{tmp_path}:/sl:private,ro"],
        "Tmpfs": {"/scratch": "rw,size=1m"},
        "Mounts": [{"Type": "bind", "Source": str(tmp_path), "Target": "/m", "ReadOnly": True,
                    "BindOptions": {"Propagation": "rprivate"}}],
        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]},
        "ExtraHosts": ["db.test:10.0.0.5"], "Dns": ["10.0.0.53"], "DnsOptions": ["ndots:2"],
        "DnsSearch": ["example.test"], "CpuShares": 512, "CpusetCpus": "0",
        "MemorySwap": -1, "MemorySwappiness": 10, "ShmSize": 8 * 1024 * 1024,
        "IpcMode": f"container:{partner}", "UTSMode": "host", "CgroupnsMode": "private",
        "Isolation": "default", "Runtime": "sdcontainer", "VolumeDriver": "local",
        "LogConfig": {"Type": "journald", "Config": {"tag": "x"}},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
        "NetworkMode": "bridge", "ReadonlyRootfs": False, "Memory": 64 * 1024 * 1024,
    }
    config = {"Image": busybox, "Cmd": ["sleep", "300"], "Env": ["A=1"],
              "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"k": "v"},
              "WorkingDir": "/tmp", "StopSignal": "SIGINT", "StopTimeout": 3,
              "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30 * 10**9,
                              "Timeout": 5 * 10**9, "Retries": 2, "StartPeriod": 10**9}}
    status, answer = create(name, {**config, "HostConfig": host_config})
    assert status == 201, answer
    doc = api("GET", f"/containers/{name}/json")[1]
    for key, value in host_config.items():
        assert doc["HostConfig"][key] == value, key
    for key, value in config.items():
        if key not in ("Image", "Env"):
            assert doc["Config"][key] == value, key
    assert "A=1" in doc["Config"]["Env"]
    assert {m["Destination"]: m["Propagation"] for m in doc["Mounts"]} == {
        "/data": "rprivate", "/ro": "rprivate", "/plain": "rprivate", "/sl": "private",
        "/m": "rprivate", "/scratch": ""}
    # Before it starts: the networks it will join.
    assert list(doc["NetworkSettings"]["Networks"]) == ["bridge"]

    assert api("POST", f"/containers/{name}/start")[0] == 204
    doc = api("GET", f"/containers/{name}/json?size=1")[1]
    for key in ("ResolvConfPath", "HostsPath", "HostnamePath"):
        assert os.path.isfile(doc[key]), key
    assert doc["LogPath"] == "" and doc["SizeRootFs"] >= doc["SizeRw"] >= 0
    assert "10.0.0.53" in Path(doc["ResolvConfPath"]).read_text()
    # Each mode is in effect, not only recorded.
    assert run_in(name, "readlink", "/proc/self/ns/ipc") == \
        run_in(partner, "readlink", "/proc/self/ns/ipc")
    assert run_in(name, "hostname") == os.uname().nodename
    # Its PID 1 has a cgroup namespace of its own (exec sessions do not join it yet).
    assert run_in(name, "readlink", "/proc/1/ns/cgroup") != os.readlink("/proc/self/ns/cgroup")
    assert run_in(partner, "readlink", "/proc/1/ns/cgroup") == \
        os.readlink("/proc/self/ns/cgroup")
    assert "Cpus_allowed_list:\t0" in run_in(name, "cat", "/proc/self/status")
    shm = [line for line in run_in(name, "cat", "/proc/mounts").splitlines()
           if " /dev/shm " in line]
    assert len(shm) == 1 and "size=8192k" in shm[0], shm


@pytest.mark.parametrize("host_config, words", [
    ({"LogConfig": {"Type": "syslog"}}, "log driver 'syslog' is not supported"),
    ({"PidMode": "bogus"}, "invalid PidMode 'bogus'"),
    ({"CgroupParent": "/kubepods"}, "must be a systemd slice"),
    ({"IpcMode": "container:no-such-thing"}, "No such container"),
    ({"IpcMode": "container:{partner}"}, "is not shareable"),
    ({"Binds": ["/tmp:/x:rshared,rslave"]}, "invalid mode: rshared,rslave"),
    ({"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/x",
                  "BindOptions": {"Propagation": "rslaved"}}]},
     "invalid propagation mode: rslaved"),
    ({"CpusetCpus": "0-4096"}, "CPU"),
])
def test_refused_modes_say_why(busybox: str, name: str, partner: str,
                               host_config: dict[str, Any], words: str) -> None:
    if host_config.get("IpcMode") == "container:{partner}":
        assert create(partner, {"Image": busybox, "Cmd": ["true"]})[0] == 201  # private
        host_config = {"IpcMode": f"container:{partner}"}
    status, answer = create(name, {"Image": busybox, "Cmd": ["true"],
                                   "HostConfig": host_config})
    assert 400 <= status < 500 and words in answer["message"], answer
    assert sdc("inspect", name).returncode != 0


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """An inspect document without what differs between two creates of one request."""
    drop = ("Id", "Created", "Name", "State", "ResolvConfPath", "HostsPath", "HostnamePath",
            "NetworkSettings", "Systemd")
    out = {k: v for k, v in doc.items() if k not in drop}
    out["Config"] = {k: v for k, v in doc["Config"].items() if k != "Hostname"}
    out["Config"]["Env"] = [e for e in doc["Config"]["Env"] if not e.startswith("HOSTNAME=")]
    return out


def test_docker_py_run_twice_inspects_alike(busybox: str, name: str, partner: str,
                                            tmp_path: Path) -> None:
    docker = pytest.importorskip("docker", reason="docker-py comes with tools/install-deps")
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    options: dict[str, Any] = dict(
        command=["sleep", "300"], detach=True, environment={"A": "1"}, labels={"k": "v"},
        ports={"80/tcp": None, "53/udp": ("127.0.0.1", None)},
        volumes={str(tmp_path): {"bind": "/data", "mode": "ro"}}, tmpfs={"/scratch": "size=1m"},
        dns=["10.0.0.53"], dns_search=["example.test"], dns_opt=["ndots:2"],
        extra_hosts={"db.test": "10.0.0.5"}, cpu_shares=256, shm_size="16m",
        ipc_mode="shareable", cap_add=["NET_ADMIN"], mem_limit="64m", pids_limit=50,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 1}, working_dir="/tmp",
        user="0", init=True, stop_signal="SIGINT", log_config={"Type": "journald"},
        healthcheck={"Test": ["CMD", "true"], "Interval": 10**9 * 30},
    )
    try:
        first = client.containers.run(busybox, name=name, **options)
        second = client.containers.run(busybox, name=partner, **options)
        a, b = first.attrs, second.attrs
        assert comparable(a) == comparable(b)
        assert a["HostConfig"]["ShmSize"] == 16 * 1024 * 1024
        assert a["HostConfig"]["Tmpfs"] == {"/scratch": "size=1m"}
        assert a["HostConfig"]["Binds"] == [f"{tmp_path}:/data:ro"]
        assert a["HostConfig"]["ExtraHosts"] == ["db.test:10.0.0.5"]
    finally:
        client.close()
