"""Builds, commit, diff and export against a real sdcontainerd in the systemd box."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.api.apiutil import docker, docker_env
from tests.integration.conftest import (
    VENV_BIN,
    sdc,
    sh,
    systemctl,
    unit_property,
    wait_for,
)

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
ENV APP=/app NAME="sd container"
WORKDIR $APP
COPY src/ ./src/
COPY *.txt /data/
ADD files.tar.gz /opt/
COPY --chown=1000:1 --chmod=600 secret.conf /etc/secret.conf
RUN echo "$GREETING ${NAME:-nobody} ${UNSET:-dflt}" > out.txt \\
    && rm /etc/group && cat src/main.c >> out.txt

FROM scratch AS bare
COPY --from=builder /app/out.txt /out.txt

FROM busybox AS final
COPY --from=builder /app/out.txt /srv/
COPY --from=builder /etc/secret.conf /etc/group* /etc/
LABEL org.example.a="one" b=two
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo triggered
USER daemon
ENTRYPOINT ["/bin/cat"]
CMD ["/srv/out.txt"]
"""


def make_context(root: Path, dockerfile: str = DOCKERFILE) -> Path:
    """A build context with sources, an archive for ADD and a .dockerignore."""
    (root / "src").mkdir(parents=True)
    (root / "src/main.c").write_text("int main;\n")
    (root / "src/debug.log").write_text("ignored\n")
    (root / "a.txt").write_text("A\n")
    (root / "b.txt").write_text("B\n")
    (root / "secret.conf").write_text("s3cret\n")
    (root / "Dockerfile").write_text(dockerfile)
    (root / ".dockerignore").write_text("**/*.log\nb.txt\n")
    with tarfile.open(root / "files.tar.gz", "w:gz") as tf:
        data = b"from the archive\n"
        info = tarfile.TarInfo("pkg/readme")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return root


def inspect_image(ref: str) -> dict[str, Any]:
    r = sdc("image", "inspect", ref)
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)[0]
    return doc


def leftovers() -> list[str]:
    """Step containers, their units and mounts, and build temp files still around."""
    out = [n for n in sdc("ps", "-a", "--format", "{{.Names}}").stdout.split()
           if n.startswith("build-")]
    units = sh("systemctl", "list-units", "--all", "--plain", "--no-legend",
               "sdcontainer-build*").stdout.split("\n")
    out += [u.split()[0] for u in units if u.strip()]
    with open("/proc/self/mountinfo") as f:
        out += [line for line in f if "/containers/" in line and "merged" in line]
    tmp = Path("/var/lib/sdcontainer/images/tmp")
    out += [p.name for p in tmp.iterdir()] if tmp.is_dir() else []
    return out


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return make_context(tmp_path / "ctx")


def test_build_every_instruction(busybox: str, ctx: Path, name: str) -> None:
    r = sdc("build", "-t", "sdc-built:1", "-t", "sdc-built:latest", "--label", "via=cli",
            "--build-arg", "GREETING=bonjour", str(ctx), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Step 1/22 : FROM ${BASE} AS builder" in r.stdout
    assert "Successfully tagged sdc-built:latest" in r.stdout
    img = inspect_image("sdc-built:1")
    cfg = img["Config"]
    assert cfg["Entrypoint"] == ["/bin/cat"] and cfg["Cmd"] == ["/srv/out.txt"]
    assert cfg["User"] == "daemon" and cfg["StopSignal"] == "SIGINT"
    assert cfg["Labels"] == {"org.example.a": "one", "b": "two", "via": "cli"}
    assert sorted(cfg["ExposedPorts"]) == ["53/udp", "8080/tcp"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                  "Retries": 2}
    raw = json.loads(Path(f"/var/lib/sdcontainer/images/blobs/sha256/"
                          f"{img['Id'].split(':')[1]}").read_bytes())
    assert raw["config"]["OnBuild"] == ["RUN echo triggered"]
    assert raw["config"]["Volumes"] == {"/data": {}}
    assert raw["config"]["Shell"] == ["/bin/sh", "-ec"]
    history = raw["history"]
    assert len(history) - sum(bool(h.get("empty_layer")) for h in history) == \
        len(raw["rootfs"]["diff_ids"])
    assert any("COPY" in h["created_by"] for h in history)
    # The final image: busybox's layer and two COPY layers.
    assert len(img["RootFS"]["Layers"]) == 3
    r = sdc("run", "--rm", "--user", "root", "--entrypoint", "sh", "sdc-built:1", "-c",
            "cat /srv/out.txt; stat -c '%u:%g:%a' /etc/secret.conf; cat /etc/secret.conf",
            timeout=60)
    assert r.stdout.splitlines() == ["bonjour sd container dflt", "int main;",
                                     "1000:1:600", "s3cret"], r.stdout + r.stderr
    # The builder stage: ADD unpacked the archive, .dockerignore kept files out.
    r = sdc("build", "-q", "--target", "builder", str(ctx), timeout=120)
    assert r.returncode == 0, r.stderr
    builder = r.stdout.strip()
    r = sdc("run", "--rm", builder, "sh", "-c",
            "cat /opt/pkg/readme; ls /app/src /data; pwd; echo $APP;"
            "test -e /etc/group || echo group-deleted", timeout=60)
    # The RUN step deleted /etc/group: its layer's whiteout hides it.
    assert r.stdout.split("\n") == ["from the archive", "/app/src:", "main.c", "", "/data:",
                                    "a.txt", "/app", "/app", "group-deleted", ""], \
        r.stdout + r.stderr
    # FROM scratch: one layer, one file.
    r = sdc("build", "-q", "--target", "bare", str(ctx), timeout=120)
    assert r.returncode == 0, r.stderr
    bare = inspect_image(r.stdout.strip())
    assert len(bare["RootFS"]["Layers"]) == 1
    # ONBUILD fires in a build FROM the image.
    child = ctx.parent / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM sdc-built:1\n")
    r = sdc("build", str(child), timeout=120)
    assert r.returncode == 0 and "triggered" in r.stdout, r.stdout + r.stderr
    assert not leftovers()


def test_cache_reproducible_and_failure(busybox: str, ctx: Path) -> None:
    df = ("FROM busybox\nCOPY a.txt /a\nRUN cat /a > /copy-of-a\nCOPY src /src\n"
          "RUN wc -l /src/main.c > /lines\n")
    (ctx / "Dockerfile").write_text(df)
    first = sdc("build", "-t", "sdc-cache", str(ctx), timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    first_id = inspect_image("sdc-cache")["Id"]
    again = sdc("build", "-t", "sdc-cache", str(ctx), timeout=120)
    assert again.stdout.count("Using cache") == 4, again.stdout
    assert inspect_image("sdc-cache")["Id"] == first_id
    # The cache survives a daemon restart.
    systemctl("restart", "sdcontainerd.service", check=True)
    assert wait_for(lambda: sdc("version").returncode == 0, timeout=30)
    again = sdc("build", "-t", "sdc-cache", str(ctx), timeout=120)
    assert again.stdout.count("Using cache") == 4, again.stdout
    ids = inspect_image("sdc-cache")["RootFS"]["Layers"]
    # Touching does not matter; editing the second COPY's source rebuilds only from it.
    os.utime(ctx / "a.txt", (1, 1))
    (ctx / "src/main.c").write_text("int main;\nint other;\n")
    third = sdc("build", "-t", "sdc-cache", str(ctx), timeout=120)
    assert third.stdout.count("Using cache") == 2, third.stdout
    assert "Running in" in third.stdout.split("Step 4/5")[1]
    new = inspect_image("sdc-cache")["RootFS"]["Layers"]
    assert new[:3] == ids[:3] and new[3:] != ids[3:]
    # Without the cache, the same inputs give the same layers (times clamped).
    runs = [sdc("build", "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=0", str(ctx),
                timeout=120) for _ in range(2)]
    layers = [inspect_image(r.stdout.strip())["RootFS"]["Layers"] for r in runs]
    assert layers[0] == layers[1], layers
    # A failing RUN: a transient scope in a slice under sdcontainer.slice while it runs;
    # its exit code and output in the error; nothing left behind.
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo visible-output; sleep 3; exit 3\n")
    proc = subprocess.Popen([str(VENV_BIN / "sdcontainer"), "build", str(ctx)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def step_scope() -> str:
        units = sh("systemctl", "list-units", "--type=scope", "--state=active", "--plain",
                   "--no-legend", "sdcontainer-build*").stdout.split()
        return units[0] if units else ""

    assert wait_for(step_scope, timeout=30)
    scope = step_scope()
    slice_unit = unit_property(scope, "Slice")
    assert slice_unit.startswith("sdcontainer-build") and \
        unit_property(slice_unit, "Slice") == "sdcontainer.slice"
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "visible-output" in out
    assert "The command '/bin/sh -c echo visible-output; sleep 3; exit 3' returned a " \
        "non-zero code: 3" in err
    assert not leftovers()
    # A lone Dockerfile on stdin, no context.
    r = sdc("build", "-q", "-", input="FROM busybox\nRUN echo from-stdin > /x\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert sdc("run", "--rm", r.stdout.strip(), "cat", "/x").stdout == "from-stdin\n"
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN true\nFROBNICATE\n")
    r = sdc("build", str(ctx), timeout=60)
    assert r.returncode == 1 and "line 3: unknown instruction: FROBNICATE" in r.stderr


def test_docker_clients_commit_diff_export(busybox: str, ctx: Path, name: str) -> None:
    env = docker_env(DOCKER_BUILDKIT="0")
    r = docker("build", "-t", "sdc-docker-built", "--build-arg", "GREETING=hi", "--target",
               "final", str(ctx), env=env, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Successfully tagged sdc-docker-built:latest" in r.stdout
    r = docker("run", "--rm", "sdc-docker-built")
    assert r.stdout.startswith("hi sd container"), r.stdout + r.stderr
    dockerpy = pytest.importorskip("docker")
    client = dockerpy.DockerClient(base_url="unix:///run/sdcontainer/sdcontainer.sock",
                                   version="auto")
    try:
        image, logs = client.images.build(path=str(ctx), tag="sdc-py-built", target="bare",
                                          labels={"by": "docker-py"})
        assert image.labels == {"by": "docker-py"}
        assert any("Successfully built" in x.get("stream", "") for x in logs)
        with pytest.raises(dockerpy.errors.BuildError, match="non-zero code: 3"):
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 3\n"))
    finally:
        client.close()
    # docker-compose 1.29 builds a service.
    project = ctx.parent / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(
        f'version: "3.4"\nservices:\n  app:\n    image: sdc-compose-built\n'
        f'    build:\n      context: {ctx}\n      target: bare\n'
        f'      args:\n        GREETING: hey\n')
    r = subprocess.run(["docker-compose", "-p", "buildtest", "build"], cwd=project, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert docker("image", "inspect", "sdc-compose-built").returncode == 0
    # commit, diff and export over a container's changes.
    r = sdc("run", "--name", name, busybox, "sh", "-c",
            "echo new > /new; rm /etc/passwd; echo x >> /etc/group", timeout=60)
    assert r.returncode == 0, r.stderr
    assert docker("diff", name).stdout.split("\n") == [
        "C /etc", "C /etc/group", "D /etc/passwd", "A /new", ""]
    r = docker("commit", "-c", 'CMD ["cat", "/new"]', "-c", "ENV COMMITTED=1", "-m", "msg",
               name, "sdc-committed:v1")
    assert r.returncode == 0 and r.stdout.startswith("sha256:"), r.stderr
    r = docker("run", "--rm", "sdc-committed:v1")
    assert r.stdout == "new\n", r.stderr
    r = docker("inspect", "-f", "{{json .Config.Env}}", "sdc-committed:v1")
    assert "COMMITTED=1" in r.stdout
    out = ctx.parent / "export.tar"
    r = sdc("export", "-o", str(out), name)
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        assert tf.extractfile("new").read() == b"new\n"  # type: ignore[union-attr]
    assert "bin/busybox" in names and "etc/passwd" not in names
    r = sdc("diff", name)
    assert r.stdout.split("\n")[:1] == ["C /etc"]


def test_cache_from_prune_and_step_options(busybox: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # Two RUNs changing nothing give the same layer twice: later steps still mount.
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN true\nRUN true\n"
                                    "RUN df -k /dev/shm | tail -n 1 > /shm; echo oops >&2\n")
    r = sdc("build", "-t", "sdc-cf:1", "--shm-size", "32m", str(ctx), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\x1b[91moops\n\x1b[0m" in r.stdout  # stderr of a step, as dockerd shows it
    r = sdc("run", "--rm", "sdc-cf:1", "cat", "/shm")
    assert r.stdout.split()[1] == "32768", r.stdout + r.stderr
    # cachefrom: only the images listed serve as cache (a missing one: none does).
    r = sdc("build", "--cache-from", "sdc-cf:1", "--shm-size", "32m", str(ctx), timeout=120)
    assert r.stdout.count("Using cache") == 3, r.stdout + r.stderr
    r = sdc("build", "--cache-from", "nosuch:tag", "-t", "sdc-cf:2", "--shm-size", "32m",
            str(ctx), timeout=120)
    assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout + r.stderr
    # builder prune: the cache of what a tagged image is built on stays; once the tag
    # is gone, it dangles and goes, and the next build runs every step.
    assert sdc("rmi", "sdc-cf:1").returncode == 0
    r = sdc("builder", "prune", "-f")
    assert r.returncode == 0 and "Total reclaimed space" in r.stdout, r.stdout + r.stderr
    r = sdc("build", "--shm-size", "32m", "-t", "sdc-cf:2", str(ctx), timeout=120)
    assert r.stdout.count("Using cache") == 3, r.stdout + r.stderr
    assert sdc("rmi", "sdc-cf:2").returncode == 0
    r = sdc("builder", "prune", "-f")
    assert r.returncode == 0 and "Deleted build cache objects" in r.stdout, r.stdout
    r = sdc("build", "--shm-size", "32m", str(ctx), timeout=120)
    assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout + r.stderr
    r = sdc("buildx", "prune", "-a", "-f")
    assert r.returncode == 0 and "Deleted build cache objects" in r.stdout, r.stdout
    # cachefrom an image loaded from elsewhere (no local cache): its history serves.
    r = sdc("build", "-t", "sdc-cf:3", "--shm-size", "32m", str(ctx), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    saved = tmp_path / "cf.tar"
    assert sdc("save", "-o", str(saved), "sdc-cf:3").returncode == 0
    before = inspect_image("sdc-cf:3")
    assert sdc("rmi", "sdc-cf:3").returncode == 0
    assert sdc("builder", "prune", "-a", "-f").returncode == 0
    assert sdc("load", "-i", str(saved)).returncode == 0
    r = sdc("build", "-t", "sdc-cf:4", "--cache-from", "sdc-cf:3", str(ctx), timeout=120)
    assert r.stdout.count("Using cache") == 3 and "Running in" not in r.stdout, r.stdout
    after = inspect_image("sdc-cf:4")
    assert after["RootFS"]["Layers"] == before["RootFS"]["Layers"]
    assert after["Id"] == before["Id"]
    assert not any(p.name.startswith("build-")
                   for p in Path("/var/lib/sdcontainer/images/tmp").iterdir())
