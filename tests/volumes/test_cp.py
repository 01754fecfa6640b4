"""`docker cp` and `sdcontainer cp` both ways, on running and stopped containers."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

from tests.api.apiutil import UnixConnection, api, docker
from tests.integration.conftest import VENV_BIN, sdc


def test_cp_both_ways_running_and_stopped(busybox: str, name: str, tmp_path: Path) -> None:
    vol = f"cp-{uuid.uuid4().hex[:8]}"
    r = docker("run", "-d", "--name", name, "-v", f"{vol}:/vol", busybox, "sh", "-c",
               "mkdir -p /srv/d && echo one > /srv/d/a && ln -s /etc /srv/escape && "
               "echo in-vol > /vol/v && exec sleep 100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    # Wait for the workload's files through the API itself.
    for _ in range(200):
        if api("HEAD", f"/containers/{name}/archive?path=/vol/v")[0] == 200:
            break
    status, _, headers = api("HEAD", f"/containers/{name}/archive?path=/srv/escape")
    assert status == 200
    st = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    assert st["name"] == "escape" and st["linkTarget"] == "/etc"
    assert st["mode"] & (1 << 27)  # Go's ModeSymlink

    out = tmp_path / "out"
    assert docker("cp", f"{name}:/srv/d", str(out)).returncode == 0
    assert (out / "a").read_text() == "one\n"
    assert docker("cp", f"{name}:/vol/v", str(tmp_path / "v")).returncode == 0
    assert (tmp_path / "v").read_text() == "in-vol\n"  # a volume of a running container

    # The container's symlink to /etc resolves inside the container, never on the host.
    marker = Path("/etc") / f"sdc-escape-{uuid.uuid4().hex[:6]}"
    src = tmp_path / "in.txt"
    src.write_text("pushed\n")
    r = docker("cp", str(src), f"{name}:/srv/escape/{marker.name}")
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    r = docker("exec", name, "cat", f"/etc/{marker.name}")
    assert r.stdout == "pushed\n", r.stderr
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(marker.name + "-direct")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"direct\n"))
    conn = UnixConnection()
    conn.request("PUT", f"/containers/{name}/archive?path=/srv/escape", body=buf.getvalue())
    assert conn.getresponse().status == 200
    conn.close()
    assert not Path(f"{marker}-direct").exists()
    assert docker("exec", name, "cat", f"/etc/{marker.name}-direct").stdout == "direct\n"
    r = docker("cp", f"{name}:/srv/escape/passwd", str(tmp_path / "passwd"))
    assert r.returncode == 0 and (tmp_path / "passwd").read_text().startswith("root:x:0:0")
    assert (tmp_path / "passwd").read_text() != Path("/etc/passwd").read_text()

    r = docker("cp", f"{name}:/nope", str(tmp_path / "n"))
    assert r.returncode != 0 and "Could not find the file /nope in container" in r.stderr

    # Stopped: the overlay mounted detached, nothing left mounted; volumes reachable.
    assert docker("stop", "-t", "0", name).returncode == 0
    mounts_before = Path("/proc/self/mountinfo").read_text().count(cid)
    r = sdc("cp", str(src), f"{name}:/srv/d/b")
    assert r.returncode == 0, r.stderr
    r = sdc("cp", f"{name}:/srv/d", str(tmp_path / "back"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "back")) == ["a", "b"]
    assert (tmp_path / "back" / "b").read_text() == "pushed\n"
    raw = subprocess.run([str(VENV_BIN / "sdcontainer"), "cp", f"{name}:/vol/v", "-"],
                         capture_output=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    with tarfile.open(fileobj=io.BytesIO(raw.stdout), mode="r") as tar:
        assert tar.getnames() == ["v"]
    assert Path("/proc/self/mountinfo").read_text().count(cid) == mounts_before == 0
    # A tar with a member climbing out is refused; nothing lands outside.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../../../../../tmp/sdc-climb")
        tar.addfile(info, io.BytesIO(b""))
    conn = UnixConnection()
    conn.request("PUT", f"/containers/{name}/archive?path=/srv", body=buf.getvalue())
    assert conn.getresponse().status == 400
    conn.close()
    assert not Path("/tmp/sdc-climb").exists()
    docker("start", name)
    r = docker("exec", name, "cat", "/srv/d/b")
    assert r.stdout == "pushed\n"
    docker("rm", "-f", name)
    docker("volume", "rm", vol)
