"""Images end to end through the daemon and the CLI: pull from a real registry (on
127.0.0.1 inside the box), run with the image's config, save/load with podman."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images.conftest import Registry, auth_registry, registry, skopeo  # noqa: F401
from tests.images.imgutil import OciLayout

from .conftest import REPO, sdc, sh

CONFIG = {
    "Cmd": ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u); cat /etc/layer2"],
    "Env": ["PATH=/bin", "GREETING=hello"], "WorkingDir": "/srv", "User": "daemon",
    "StopSignal": "SIGUSR1", "ExposedPorts": {"80/tcp": {}}, "Labels": {"team": "blue"},
}


def layer2() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"from the second layer\n"
        info = tarfile.TarInfo("etc/layer2")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
           ) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("app")
    rootfs = tmp / "rootfs.tar"
    sh(str(REPO / "tools" / "busybox-rootfs"), str(rootfs))
    lay = OciLayout(tmp / "layout")
    desc = lay.image([rootfs.read_bytes(), layer2()], config=CONFIG)
    lay.tag(desc, "1.2")
    ref = f"{registry.host}/team/app"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{lay.root}:1.2", f"docker://{ref}:1.2")
    yield ref


def test_pull_and_run_with_the_image_config(daemon: None, pushed: str, name: str) -> None:
    r = sdc("pull", f"{pushed}:1.2", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Digest: sha256:" in r.stdout
    digest = r.stdout.split("Digest: ")[1].split()[0]
    images = sdc("images", "--digests").stdout
    assert f"{pushed}" in images and digest[:19] in images
    r = sdc("run", "--name", name, f"{pushed}:1.2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from /srv as 1\nfrom the second layer\n"
    cfg = json.loads(sdc("inspect", name).stdout)[0]["Config"]
    assert cfg["StopSignal"] == "SIGUSR1" and cfg["Labels"] == {"team": "blue"}
    # by digest too
    assert sdc("pull", f"{pushed}@{digest}", timeout=120).returncode == 0
    assert sdc("run", "--rm", f"{pushed}@{digest}", "true").returncode == 0


def test_rmi_refuses_an_image_in_use(daemon: None, pushed: str, name: str) -> None:
    assert sdc("pull", f"{pushed}:1.2", timeout=120).returncode == 0
    sdc("create", "--name", name, f"{pushed}:1.2", check=True)
    r = sdc("rmi", f"{pushed}:1.2")
    assert r.returncode == 1 and "is using" in r.stderr
    assert sdc("tag", f"{pushed}:1.2", "localhost/copy:2").returncode == 0
    assert "localhost/copy" in sdc("images").stdout
    assert sdc("rmi", "localhost/copy:2").returncode == 0


def test_save_load_with_podman(daemon: None, pushed: str, tmp_path: Path) -> None:
    assert sdc("pull", f"{pushed}:1.2", timeout=120).returncode == 0
    run_root = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))  # podman: at most 50 chars
    ours = tmp_path / "ours.tar"
    r = sdc("save", "-o", str(ours), f"{pushed}:1.2", timeout=120)
    assert r.returncode == 0, r.stderr
    podman = ["podman", "--root", str(tmp_path / "pm"), "--runroot", str(run_root),
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
              "--events-backend", "file"]
    r = sh(*podman, "load", "-i", str(ours), check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    theirs = tmp_path / "theirs.tar"
    r = sh(*podman, "save", "--format", "docker-archive", "-o", str(theirs), f"{pushed}:1.2",
           check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sdc("rmi", "-f", f"{pushed}:1.2").returncode == 0
    r = sdc("load", "-i", str(theirs), timeout=120)
    assert r.returncode == 0 and "Loaded image" in r.stdout, r.stderr
    assert sdc("run", "--rm", f"{pushed}:1.2").stdout.startswith("hello from /srv")


def test_import_with_changes(daemon: None, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    sh(str(REPO / "tools" / "busybox-rootfs"), str(rootfs))
    r = sdc("import", "-c", 'CMD ["echo", "changed"]', "-c", "WORKDIR /tmp", str(rootfs),
            "localhost/changed:1")
    assert r.returncode == 0, r.stderr
    assert sdc("run", "--rm", "localhost/changed:1").stdout == "changed\n"


def test_bad_references_are_clear(daemon: None) -> None:
    for ref in ("UPPER/case", "sha256:../../x", "a@sha256:1234"):
        r = sdc("pull", ref)
        assert r.returncode == 1 and "Traceback" not in r.stderr, ref
        assert len(r.stderr.strip().splitlines()) <= 2


def test_login_pull_logout(daemon: None, auth_registry: Registry,  # noqa: F811
                           tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    sh(str(REPO / "tools" / "busybox-rootfs"), str(rootfs))
    lay = OciLayout(tmp_path / "layout")
    lay.tag(lay.image([rootfs.read_bytes()], config={"Cmd": ["echo", "private"]}), "1")
    ref = f"{auth_registry.host}/private/app:1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds",
           f"{auth_registry.user}:{auth_registry.password}", f"oci:{lay.root}:1",
           f"docker://{ref}")
    r = sdc("pull", ref, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = sdc("login", "-u", "tester", "--password-stdin", auth_registry.host, input="wrong\n")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    r = sdc("login", "-u", str(auth_registry.user), "--password-stdin", auth_registry.host,
            input=f"{auth_registry.password}\n")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
    assert oct(os.stat("/var/lib/sdcontainer/auth.json").st_mode & 0o777) == "0o600"
    assert sdc("pull", ref, timeout=60).returncode == 0
    assert sdc("run", "--rm", ref).stdout == "private\n"
    assert sdc("logout", auth_registry.host).returncode == 0
    assert auth_registry.host not in Path("/var/lib/sdcontainer/auth.json").read_text()
