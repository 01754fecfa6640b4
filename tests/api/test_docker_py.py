"""docker-py (the `docker` Python library) drives sdcontainerd, unmodified."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import systemctl

from .apiutil import DOCKER_HOST

docker = pytest.importorskip("docker", reason="docker-py comes with tools/install-deps")


@pytest.fixture
def client(daemon: None) -> Iterator[Any]:
    c = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    yield c
    c.close()


def test_run_remove_returns_output(client: Any, busybox: str) -> None:
    assert client.containers.run(busybox, "echo hi", remove=True) == b"hi\n"


def test_detached_container(client: Any, busybox: str, name: str) -> None:
    c = client.containers.run(busybox, ["sh", "-c", "echo ready; sleep 100"], detach=True,
                              name=name, labels={"via": "docker-py"})
    assert systemctl("is-active", f"sdcontainer-{name}.scope").stdout.strip() == "active"
    c.reload()
    assert c.status == "running" and c.labels == {"via": "docker-py"}
    code, out = c.exec_run(["sh", "-c", "echo $((6*7))"])
    assert (code, out) == (0, b"42\n")
    assert [x.name for x in client.containers.list(filters={"label": "via=docker-py"})] == [name]
    stats = c.stats(stream=False)
    assert stats["pids_stats"]["current"] >= 2
    assert b"ready" in c.logs()
    c.stop(timeout=1)
    assert c.wait(timeout=10)["StatusCode"] == 137
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)


def test_errors_are_docker_exceptions(client: Any, busybox: str) -> None:
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("no-such-container")
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create(busybox, "true", sysctls={"net.ipv4.ip_forward": "1"})
    assert e.value.status_code == 400 and "Sysctls" in str(e.value)
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.run("no-such-image:1", "true", remove=True)


def test_attach_to_an_exited_container_replays_its_logs(client: Any, busybox: str,
                                                        name: str) -> None:
    c = client.containers.create(busybox, ["sh", "-c", "echo out; echo err >&2"], name=name)
    c.start()
    assert c.wait(timeout=30)["StatusCode"] == 0
    # As dockerd: logs=1 replays, stream=0 ends the answer there instead of waiting.
    assert client.api.attach(c.id, stream=False, logs=True, stderr=False) == b"out\n"
    both = client.api.attach(c.id, stream=False, logs=True)
    assert sorted(both.split()) == [b"err", b"out"]
    assert client.api.attach(c.id, stream=False, logs=False) == b""
    c.remove()
