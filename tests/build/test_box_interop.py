"""Images cross between sdcontainer and podman in both directions (the box's podman,
storage on tmpfs): what one builds, the other loads and runs with the same config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import sdc, sh

PODMAN_DIR = Path("/run/sdc-interop-podman")

DOCKERFILE = """\
FROM {base}
ENV GREETING=hello PLACE="the box"
WORKDIR /app
COPY tree/ ./tree/
RUN echo built-by-run > /app/built && mkdir -p /app/data && rm /etc/group
LABEL org.example.by={who}
USER nobody
CMD ["sh", "-c", "echo $GREETING $PLACE; pwd; id -u; cat built tree/a tree/sub/b; \
test -e /etc/group || echo no-group"]
"""
EXPECTED = ["hello the box", "/app", "65534", "built-by-run", "A", "B", "no-group"]


def podman(*args: str, timeout: float = 180) -> str:
    """The box's podman on tmpfs storage (runc: crun refuses hybrid cgroups)."""
    argv = ["podman", "--root", str(PODMAN_DIR / "root"), "--runroot",
            str(PODMAN_DIR / "run"), "--runtime", "runc", "--cgroup-manager", "systemd",
            "--events-backend", "file", *args]
    r = sh(*argv, check=False, timeout=timeout)
    assert r.returncode == 0, f"podman {' '.join(args)}: {r.stdout}{r.stderr}"
    return r.stdout


def context(root: Path, base: str, who: str) -> Path:
    (root / "tree/sub").mkdir(parents=True)
    (root / "tree/a").write_text("A\n")
    (root / "tree/sub/b").write_text("B\n")
    (root / "Dockerfile").write_text(DOCKERFILE.format(base=base, who=who))
    return root


def check_config(cfg: dict[str, Any], who: str) -> None:
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "nobody"
    assert "GREETING=hello" in cfg["Env"] and "PLACE=the box" in cfg["Env"]
    assert cfg["Cmd"][:2] == ["sh", "-c"]
    assert cfg["Labels"]["org.example.by"] == who


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_images_cross_both_ways(busybox: str, tmp_path: Path) -> None:
    PODMAN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        # sdcontainer builds; podman loads it from `save` and runs it.
        ours = context(tmp_path / "ours", busybox, "sdcontainer")
        r = sdc("build", "-t", "interop-ours:1", str(ours), timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(sdc("image", "inspect", "interop-ours:1").stdout)[0]
        saved = tmp_path / "ours.tar"
        r = sdc("save", "-o", str(saved), "interop-ours:1", busybox)
        assert r.returncode == 0, r.stderr
        podman("load", "-i", str(saved))
        got = json.loads(podman("image", "inspect", "interop-ours:1"))[0]
        check_config(got["Config"], "sdcontainer")
        # busybox, COPY, RUN: the same layers (diff_ids) on both sides.
        assert got["RootFS"]["Layers"] == doc["RootFS"]["Layers"] and \
            len(doc["RootFS"]["Layers"]) == 3
        out = podman("run", "--rm", "--network", "none", "interop-ours:1")
        assert out.splitlines() == EXPECTED, out

        # podman builds FROM the busybox it loaded from us (no network), in docker
        # and OCI formats; sdcontainer loads each (docker-archive, oci-archive) and runs it.
        base = json.loads(sdc("image", "inspect", busybox).stdout)[0]["Id"]
        podman("tag", base.split(":")[1], "localhost/interop-base:latest")
        theirs = context(tmp_path / "theirs", "localhost/interop-base:latest", "podman")
        for fmt, archive in (("docker", "docker-archive"), ("oci", "oci-archive")):
            tag = f"interop-theirs:{fmt}"
            podman("build", "--pull=never", "--format", fmt, "-t", tag, str(theirs))
            tar = tmp_path / f"theirs-{fmt}.tar"
            podman("save", "--format", archive, "-o", str(tar), tag)
            r = sdc("load", "-i", str(tar))
            assert r.returncode == 0, r.stdout + r.stderr
            # oci-archive keeps no name podman would give back: tag it by its id.
            ref = tag
            if sdc("image", "inspect", tag).returncode != 0:
                loaded = r.stdout.split()[-1]
                assert sdc("tag", loaded, tag).returncode == 0, r.stdout
            doc = json.loads(sdc("image", "inspect", ref).stdout)[0]
            check_config(doc["Config"], "podman")
            pod = json.loads(podman("image", "inspect", tag))[0]
            assert doc["RootFS"]["Layers"] == pod["RootFS"]["Layers"]
            r = sdc("run", "--rm", "--network", "none", ref, timeout=60)
            assert r.stdout.splitlines() == EXPECTED, fmt + r.stdout + r.stderr
            # And sdcontainer builds on top of podman's image, with the cache.
            child = tmp_path / f"child-{fmt}"
            child.mkdir()
            (child / "Dockerfile").write_text(f"FROM {ref}\nUSER root\n"
                                              "RUN echo child >> /app/built\n")
            r = sdc("build", "-q", str(child), timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
            r = sdc("run", "--rm", r.stdout.strip(), "cat", "/app/built")
            assert r.stdout == "built-by-run\nchild\n", r.stdout + r.stderr
    finally:
        sh("podman", "--root", str(PODMAN_DIR / "root"), "--runroot", str(PODMAN_DIR / "run"),
           "system", "reset", "--force", check=False, timeout=120)
        sh("rm", "-rf", str(PODMAN_DIR), check=False)
