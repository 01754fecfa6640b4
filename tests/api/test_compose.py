"""docker-compose 1.29 (Debian's) runs a two-service project against sdcontainerd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import wait_for

from .apiutil import docker, docker_env

COMPOSE = """\
version: "3"
services:
  web:
    image: {image}
    command: ["sh", "-c", "echo hello-from-web > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
  client:
    image: {image}
    command: ["sh", "-c", "until wget -qO- http://web/index.html; do sleep 0.2; done; sleep 100"]
    depends_on: [web]
"""


def compose(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is missing: run tools/install-deps")
    return subprocess.run([exe, "-p", "apitest", *args], cwd=project, capture_output=True,
                          text=True, timeout=120, env=docker_env())


def test_two_services_one_reaches_the_other_by_name(busybox: str, tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(image=busybox))
    try:
        r = compose(tmp_path, "up", "-d")
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: "hello-from-web" in compose(tmp_path, "logs", "--no-color",
                                                            "client").stdout, timeout=30)
        names = docker("ps", "--format", "{{.Names}}").stdout.split()
        assert {"apitest_web_1", "apitest_client_1"} <= set(names)
        assert "apitest_default" in docker("network", "ls", "--format", "{{.Name}}").stdout
    finally:
        r = compose(tmp_path, "down", "-t", "1")
    assert r.returncode == 0, r.stderr
    assert "apitest_" not in docker("ps", "-a", "--format", "{{.Names}}").stdout
    assert "apitest_default" not in docker("network", "ls", "--format", "{{.Name}}").stdout
