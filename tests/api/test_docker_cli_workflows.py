"""Whole workflows with the unmodified docker CLI against sdcontainerd (issue 18): push
to a registry, remove, pull back by digest; export a container into import."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

from .apiutil import docker, docker_bin, docker_env


def test_push_rmi_pull_by_digest(busybox: str, tmp_path: Path) -> None:
    from tests.images.conftest import _start_registry

    reg = _start_registry(tmp_path / "reg", ("pusher", "s3cret"))
    ref = f"{reg.host}/workflows/bb:v1"
    # docker's own config.json holds the credentials: the CLI sends X-Registry-Auth.
    conf = tmp_path / "docker-config"
    conf.mkdir()
    auth = base64.b64encode(b"pusher:s3cret").decode()
    (conf / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
    env = docker_env(DOCKER_CONFIG=str(conf))
    local = ref
    try:
        assert docker("tag", busybox, ref, env=env).returncode == 0
        r = docker("push", ref, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        m = re.search(r"^v1: digest: (sha256:[0-9a-f]{64}) size: \d+$", r.stdout, re.M)
        assert m, r.stdout
        digest = m[1]
        assert f"The push refers to repository [{reg.host}/workflows/bb]" in r.stdout
        r = docker("rmi", ref, env=env)
        assert r.returncode == 0 and f"Untagged: {ref}" in r.stdout, r
        by_digest = f"{reg.host}/workflows/bb@{digest}"
        r = docker("pull", by_digest, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        local = by_digest
        assert f"Digest: {digest}" in r.stdout, r.stdout
        r = docker("image", "inspect", "-f", "{{json .RepoDigests}}", by_digest, env=env)
        assert r.returncode == 0 and by_digest in json.loads(r.stdout), r
        r = docker("run", "--rm", by_digest, "echo", "from-the-registry", env=env)
        assert (r.returncode, r.stdout) == (0, "from-the-registry\n"), r.stderr
    finally:
        docker("rmi", local)
        reg.proc.terminate()
        reg.proc.wait(10)


def test_export_import_round_trip(busybox: str, name: str) -> None:
    image = f"{name}-imported:1"
    r = docker("run", "--name", name, busybox, "sh", "-c", "echo written-$((6*7)) > /marker")
    assert r.returncode == 0, r.stderr
    try:
        export = subprocess.Popen([docker_bin(), "export", name], stdout=subprocess.PIPE,
                                  env=docker_env())
        imported = subprocess.run([docker_bin(), "import", "-", image], stdin=export.stdout,
                                  capture_output=True, text=True, timeout=120,
                                  env=docker_env())
        assert export.stdout is not None
        export.stdout.close()
        assert export.wait(60) == 0
        assert imported.returncode == 0 and imported.stdout.startswith("sha256:"), imported
        r = docker("run", "--rm", image, "cat", "/marker")
        assert (r.returncode, r.stdout) == (0, "written-42\n"), r.stderr
    finally:
        docker("rm", "-f", name)
        docker("rmi", image)
