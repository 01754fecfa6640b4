"""Named and anonymous volumes through the docker CLI, our CLI and the API."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.api.apiutil import api, docker
from tests.integration.conftest import sdc

VOLUMES = Path("/var/lib/sdcontainer/volumes")


def mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path) for line in open("/proc/self/mountinfo"))


def test_named_volume_lifecycle(busybox: str, name: str) -> None:
    vol = f"v-{uuid.uuid4().hex[:8]}"
    r = docker("volume", "create", "--label", "suite=vol", vol)
    assert (r.returncode, r.stdout.strip()) == (0, vol), r.stderr
    info = json.loads(docker("volume", "inspect", vol).stdout)[0]
    assert info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Mountpoint"] == str(VOLUMES / vol / "_data")
    assert info["Labels"] == {"suite": "vol"} and info["CreatedAt"]
    assert vol in docker("volume", "ls", "-q", "--filter", "label=suite=vol").stdout.split()
    assert vol in docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    assert vol not in docker("volume", "ls", "-q", "--filter", "label=suite=other").stdout
    r = sdc("volume", "ls", "--filter", f"name={vol}", "--format", "{{.Name}} {{.Driver}}")
    assert r.stdout.split("\n")[0] == f"{vol} local", r.stderr
    r = sdc("volume", "inspect", "-f", "{{.Mountpoint}}", vol)
    assert r.stdout.strip() == str(VOLUMES / vol / "_data"), r.stderr

    # -v NAME:/path: data written by one container is there for the next, and on disk.
    r = docker("run", "--name", name, "-v", f"{vol}:/data", busybox,
               "sh", "-c", "echo kept > /data/f")
    assert r.returncode == 0, r.stderr
    assert (VOLUMES / vol / "_data" / "f").read_text() == "kept\n"
    assert vol in docker("volume", "ls", "-q", "--filter", "dangling=false").stdout.split()
    mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", name).stdout)
    assert mounts == [{"Type": "volume", "Name": vol, "Source": str(VOLUMES / vol / "_data"),
                       "Destination": "/data", "Driver": "local", "Mode": "", "RW": True,
                       "Propagation": ""}]
    # In use, even by a stopped container: refused, force or not.
    r = docker("volume", "rm", vol)
    assert r.returncode != 0 and "volume is in use" in r.stderr
    status, body, _ = api("DELETE", f"/volumes/{vol}?force=1")
    assert status == 409, body
    assert docker("rm", name).returncode == 0
    r = docker("run", "--rm", "--mount", f"type=volume,source={vol},target=/d,readonly",
               busybox, "sh", "-c", "cat /d/f; touch /d/g")
    assert r.stdout == "kept\n" and r.returncode != 0  # read-only
    assert sdc("volume", "rm", vol).returncode == 0
    assert not (VOLUMES / vol).exists()
    r = docker("volume", "inspect", vol)
    assert r.returncode != 0 and "no such volume" in r.stderr.lower()
    status, body, _ = api("POST", "/volumes/create", {"Name": "../x"})
    assert status == 400, body


@pytest.mark.parametrize("cli", ["docker", "sdcontainer"])
def test_copy_up_anonymous_and_volumes_from(busybox: str, name: str, cli: str) -> None:
    # The same flags through the docker CLI and ours.
    docker = {"docker": globals()["docker"], "sdcontainer": sdc}[cli]
    # A new named volume on a non-empty image directory gets its files; nocopy does not.
    vol, empty = f"cu-{uuid.uuid4().hex[:8]}", f"nc-{uuid.uuid4().hex[:8]}"
    r = docker("run", "--rm", "-v", f"{vol}:/etc", busybox, "cat", "/etc/passwd")
    assert r.returncode == 0 and r.stdout.startswith("root:"), r.stderr
    assert (VOLUMES / vol / "_data" / "group").is_file()
    r = docker("run", "--rm", "--mount", f"type=volume,source={empty},target=/etc,"
               "volume-nocopy", busybox, "ls", "/etc")
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr

    # -v /path: an anonymous volume, which --volumes-from shares and rm -v removes.
    r = docker("create", "--name", name, "-v", "/anon", busybox, "sh", "-c",
               "echo from-anon > /anon/f")
    assert r.returncode == 0, r.stderr
    anon = json.loads(docker("inspect", "-f", "{{json .Mounts}}", name).stdout)[0]
    assert anon["Type"] == "volume" and len(anon["Name"]) == 64
    assert docker("start", "-a", name).returncode == 0
    r = docker("run", "--rm", "--volumes-from", f"{name}:ro", busybox, "sh", "-c",
               "cat /anon/f; echo x > /anon/g")
    assert r.stdout == "from-anon\n" and "Read-only" in r.stderr
    assert docker("rm", "-v", name).returncode == 0
    assert not (VOLUMES / anon["Name"]).exists()
    # Named volumes stay after rm -v and after a plain prune (API 1.42 and later prune
    # anonymous volumes only); they go with all=true, which reports the space.
    status, body, _ = api("POST", "/v1.43/volumes/prune")
    assert status == 200 and not {vol, empty} & set(body["VolumesDeleted"] or [])
    assert (VOLUMES / vol).exists()
    status, body, _ = api("POST", "/volumes/prune?filters=" + quote('{"all":["true"]}'))
    assert status == 200 and {vol, empty} <= set(body["VolumesDeleted"])
    assert body["SpaceReclaimed"] > 0
    assert not (VOLUMES / vol).exists()


def test_tmpfs_and_bind_typed_volumes(busybox: str, name: str, tmp_path: Path) -> None:
    vol = f"tm-{uuid.uuid4().hex[:8]}"
    r = sdc("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
            "o=size=1m,mode=0700", vol)
    assert r.returncode == 0, r.stderr
    data = VOLUMES / vol / "_data"
    r = docker("run", "--name", name, "-v", f"{vol}:/t", busybox, "sh", "-c",
               "grep ' /t ' /proc/mounts; stat -c %a /t")
    assert r.returncode == 0 and "tmpfs" in r.stdout and r.stdout.split()[-1] == "700", r.stdout
    assert mounted(data)
    assert docker("rm", name).returncode == 0
    assert sdc("volume", "rm", vol).returncode == 0
    assert not mounted(data) and not (VOLUMES / vol).exists()

    host = Path(os.environ.get("SDC_TEST_TMP", "/var/tmp")) / f"bindvol-{uuid.uuid4().hex[:6]}"
    host.mkdir()
    try:
        r = docker("volume", "create", "-o", "type=none", "-o", "o=bind", "-o",
                   f"device={host}", vol)
        assert r.returncode == 0, r.stderr
        r = docker("run", "--rm", "-v", f"{vol}:/b", busybox, "sh", "-c", "echo hi > /b/x")
        assert r.returncode == 0, r.stderr
        assert (host / "x").read_text() == "hi\n"
        assert docker("volume", "rm", vol).returncode == 0
        assert (host / "x").exists() and not mounted(VOLUMES / vol / "_data")
        r = docker("volume", "create", "-o", "bogus=1", "bad-opts")
        assert r.returncode != 0 and "invalid option key" in r.stderr
        assert docker("volume", "create", "unused-one").returncode == 0
        r = docker("volume", "prune", "-f")  # docker 23+: anonymous volumes only
        assert r.returncode == 0 and "unused-one" not in r.stdout, r.stderr
        r = docker("volume", "prune", "-a", "-f")
        assert r.returncode == 0 and "unused-one" in r.stdout, r.stderr
        assert "Total reclaimed space" in r.stdout
    finally:
        subprocess.run(["rm", "-rf", str(host)], check=False)


def image_with_volume(tmp_path: Path) -> str:
    """`volimg`: busybox plus /data/seed, with VOLUME /data, loaded as a docker archive."""
    import hashlib
    import io
    import tarfile

    from tests.integration.conftest import busybox_rootfs

    layer = io.BytesIO()
    with tarfile.open(busybox_rootfs(tmp_path)) as src, tarfile.open(fileobj=layer,
                                                                      mode="w") as dst:
        for m in src:
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        seed = tarfile.TarInfo("./data/seed")
        seed.size = 5
        dst.addfile(seed, io.BytesIO(b"seed\n"))
    diff = hashlib.sha256(layer.getvalue()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh"], "Volumes": {"/data": {}}},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()
    cid = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"{cid}.json", "RepoTags": ["volimg:latest"],
                            "Layers": [f"{diff}/layer.tar"]}]).encode()
    archive = tmp_path / "volimg.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in ((f"{diff}/layer.tar", layer.getvalue()), (f"{cid}.json", config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = docker("load", "-i", str(archive))
    assert r.returncode == 0, r.stderr
    return "volimg"


def test_image_volume_is_anonymous_and_copied_up(daemon: None, name: str,
                                                 tmp_path: Path) -> None:
    image = image_with_volume(tmp_path)
    r = docker("run", "--name", name, image, "sh", "-c", "cat /data/seed; echo new > /data/n")
    assert (r.returncode, r.stdout) == (0, "seed\n"), r.stderr
    mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", name).stdout)
    assert [(m["Type"], m["Destination"]) for m in mounts] == [("volume", "/data")]
    data = VOLUMES / mounts[0]["Name"] / "_data"
    assert (data / "seed").read_text() == "seed\n" and (data / "n").read_text() == "new\n"
    # rm -v takes the anonymous volume with the container.
    assert docker("rm", "-v", name).returncode == 0
    assert not data.exists()
