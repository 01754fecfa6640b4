"""docker-compose 1.29: a second `up -d` recreates only what changed (issue 18).

A project with a named volume, a user network and `depends_on` on a healthy service. Compose
keeps a hash of each service's config in a label and compares what inspect reports for the
network and the volume with the file, so any field that does not round-trip makes every
`up` recreate (or refuse).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import wait_for

from .apiutil import docker, docker_env

COMPOSE = """\
version: "2.4"
services:
  db:
    image: {image}
    command: ["sh", "-c", "echo ready > /data/ready && exec httpd -f -p 80 -h /data"]
    volumes: ["dbdata:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 1s
      timeout: 5s
      retries: 30
  app:
    image: {image}
    command: ["sh", "-c", "wget -qO- http://db/ready && exec sleep 300"]
    environment:
      MODE: "{mode}"
    networks: [back]
    depends_on:
      db:
        condition: service_healthy
volumes:
  dbdata: {{}}
networks:
  back: {{}}
"""

PROJECT = "idem"


def compose(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is missing: run tools/install-deps")
    return subprocess.run([exe, "-p", PROJECT, *args], cwd=project, capture_output=True,
                          text=True, timeout=120, env=docker_env())


def ids() -> dict[str, str]:
    """Service name -> container id, for the project's containers."""
    r = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
               "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}')
    return {svc: cid for cid, svc in (line.split() for line in r.stdout.splitlines())}


def test_second_up_recreates_only_the_changed_service(busybox: str, tmp_path: Path) -> None:
    spec = tmp_path / "docker-compose.yml"
    spec.write_text(COMPOSE.format(image=busybox, mode="one"))
    try:
        r = compose(tmp_path, "up", "-d")
        assert r.returncode == 0, r.stderr
        first = ids()
        assert set(first) == {"db", "app"}
        assert wait_for(lambda: "ready" in compose(tmp_path, "logs", "--no-color",
                                                   "app").stdout, timeout=30)

        r = compose(tmp_path, "up", "-d")
        assert r.returncode == 0, r.stderr
        assert "Recreating" not in r.stderr, r.stderr
        assert ids() == first

        spec.write_text(COMPOSE.format(image=busybox, mode="two"))
        r = compose(tmp_path, "up", "-d")
        assert r.returncode == 0, r.stderr
        after = ids()
        assert after["db"] == first["db"]
        assert after["app"] != first["app"]
        env = docker("inspect", "--format", "{{json .Config.Env}}", after["app"]).stdout
        assert "MODE=two" in env
    finally:
        r = compose(tmp_path, "down", "-v", "-t", "1")
    assert r.returncode == 0, r.stderr
    assert ids() == {}
    assert f"{PROJECT}_dbdata" not in docker("volume", "ls", "-q").stdout
    assert f"{PROJECT}_back" not in docker("network", "ls", "--format", "{{.Name}}").stdout
