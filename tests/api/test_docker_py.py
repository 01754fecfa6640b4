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
        client.containers.create(busybox, "true", shm_size="1g")
    assert e.value.status_code == 400 and "ShmSize" in str(e.value)
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.run("no-such-image:1", "true", remove=True)
