"""Docker compatibility, part 3 (issue 18, from docker-py's suite and docker-compose):
image inspect in dockerd's full shape (ContainerConfig, Comment, Parent), volume subpaths,
HostConfig.VolumeDriver and DeviceCgroupRules."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.integration.conftest import unit_property, wait_for

from .apiutil import api, docker


def test_image_inspect_has_container_config_and_commit_comment(busybox: str, name: str
                                                                 ) -> None:
    # docker-compose reads ContainerConfig.Volumes when it recreates a container.
    status, doc, _ = api("GET", f"/v1.43/images/{busybox}/json")
    assert status == 200
    for key in ("Config", "ContainerConfig"):
        assert {"Volumes", "Cmd", "Env", "Labels", "Image", "Tty"} <= set(doc[key]), key
    status, made, _ = api("POST", f"/v1.43/containers/create?name={name}",
                          {"Image": busybox, "Cmd": ["true"]})
    assert status == 201, made
    tag = f"commit-{uuid.uuid4().hex[:8]}"
    status, made, _ = api("POST", f"/v1.43/commit?container={name}&repo={tag}"
                                  "&comment=why&changes=VOLUME%20%2Fdata")
    assert status == 201, made
    try:
        status, doc, _ = api("GET", f"/v1.43/images/{tag}/json")
        assert doc["Comment"] == "why"
        # Parent: the image it was committed from, while that image is here; history
        # names it at its own top entry, as dockerd does.
        base = api("GET", f"/v1.43/images/{busybox}/json")[1]["Id"]
        assert doc["Parent"] == base
        status, hist, _ = api("GET", f"/v1.43/images/{tag}/history")
        assert [h["Id"] for h in hist[:2]] == [doc["Id"], base], hist
        assert doc["Config"]["Volumes"] == {"/data": {}}
    finally:
        api("DELETE", f"/v1.43/images/{tag}")


def _run(body: dict[str, object], name: str) -> tuple[int, object]:
    status, made, _ = api("POST", f"/v1.43/containers/create?name={name}", body)
    if status != 201:
        return status, made
    status, err, _ = api("POST", f"/v1.43/containers/{name}/start")
    return status, err


def test_volume_subpath_mount_and_escapes(busybox: str, name: str) -> None:
    vol = f"sub-{uuid.uuid4().hex[:8]}"
    setup = f"{name}-setup"
    try:
        status, err = _run({"Image": busybox, "HostConfig": {"Binds": [f"{vol}:/vol"]},
                            "Cmd": ["sh", "-c", "mkdir -p /vol/sub && echo inside > /vol/sub/f"
                                    " && ln -s /etc /vol/out"]}, setup)
        assert status == 204, err
        assert docker("wait", setup).stdout.strip() == "0"

        def mount(subpath: str) -> dict[str, object]:
            return {"Type": "volume", "Source": vol, "Target": "/mnt", "ReadOnly": True,
                    "VolumeOptions": {"Subpath": subpath}}

        status, err = _run({"Image": busybox, "Cmd": ["cat", "/mnt/f"],
                            "HostConfig": {"Mounts": [mount("sub")]}}, name)
        assert status == 204, err
        assert docker("wait", name).stdout.strip() == "0"
        assert wait_for(lambda: docker("logs", name).stdout.strip() == "inside")
        status, doc, _ = api("GET", f"/v1.43/containers/{name}/json")
        assert doc["HostConfig"]["Mounts"][0]["VolumeOptions"] == {"Subpath": "sub"}

        # A symlink the volume's user made must not reach the host's /etc.
        status, err = _run({"Image": busybox, "Cmd": ["true"],
                            "HostConfig": {"Mounts": [mount("out")]}}, f"{name}-out")
        assert status == 400 and "leaves the volume" in str(err), err
        status, err, _ = api("POST", "/v1.43/containers/create", {
            "Image": busybox, "Cmd": ["true"], "HostConfig": {"Mounts": [mount("../x")]}})
        assert status == 400 and "invalid volume subpath" in str(err), err
    finally:
        docker("rm", "-f", setup, name, f"{name}-out")
        api("DELETE", f"/v1.43/volumes/{vol}")


def test_volume_driver_applies_only_to_volumes_the_create_makes(busybox: str, name: str
                                                                 ) -> None:
    status, made, _ = api("POST", f"/v1.43/containers/create?name={name}",
                          {"Image": busybox, "Cmd": ["true"],
                           "HostConfig": {"VolumeDriver": "foo"}})
    assert status == 201, made
    status, doc, _ = api("GET", f"/v1.43/containers/{name}/json")
    assert doc["HostConfig"]["VolumeDriver"] == "foo"
    before = set(docker("volume", "ls", "-q").stdout.split())
    status, err, _ = api("POST", "/v1.43/containers/create", {
        "Image": busybox, "Cmd": ["true"], "Volumes": {"/data": {}},
        "HostConfig": {"VolumeDriver": "foo"}})
    assert status == 400 and "volume driver 'foo'" in str(err), err
    assert set(docker("volume", "ls", "-q").stdout.split()) == before


def test_device_cgroup_rules_reach_the_scope(busybox: str, name: str) -> None:
    rules = ["c 1:11 r", "b *:* m"]
    status, err = _run({"Image": busybox, "Cmd": ["sleep", "300"],
                        "HostConfig": {"DeviceCgroupRules": rules}}, name)
    assert status == 204, err
    status, doc, _ = api("GET", f"/v1.43/containers/{name}/json")
    assert doc["HostConfig"]["DeviceCgroupRules"] == rules
    allow = unit_property(f"sdcontainer-{name}.scope", "DeviceAllow")
    assert "/dev/char/1:11 r" in allow and "block-* m" in allow, allow
    status, err, _ = api("POST", "/v1.43/containers/create", {
        "Image": busybox, "Cmd": ["true"], "HostConfig": {"DeviceCgroupRules": ["c 1 rwm"]}})
    assert status == 400 and "invalid device cgroup rule 'c 1 rwm'" in str(err), err


def test_docker_cli_commit_push_pull_by_digest_update_df_export(busybox: str, name: str,
                                                                 tmp_path: Path) -> None:
    """Issue 18's "Done means", with the unmodified docker CLI."""
    from tests.images.conftest import _start_registry

    r = docker("run", "-d", "--name", name, "-m", "64m", busybox, "sh", "-c",
               "echo made > /made && exec sleep 300")
    assert r.returncode == 0, r.stderr
    r = docker("update", "-m", "96m", name)
    assert r.returncode == 0, r.stderr
    assert unit_property(f"sdcontainer-{name}.scope", "MemoryMax") == str(96 << 20)
    assert docker("inspect", "-f", "{{.HostConfig.Memory}}", name).stdout.strip() == \
        str(96 << 20)
    assert wait_for(lambda: docker("exec", name, "cat", "/made").stdout == "made\n")

    reg = _start_registry(tmp_path / "reg", None)
    ref, digest = f"{reg.host}/compat3/{name}", ""
    try:
        r = docker("commit", "-c", "ENV FROM_COMMIT=1", "-m", "msg", name, f"{ref}:v1")
        assert r.returncode == 0, r.stderr
        r = docker("push", f"{ref}:v1")
        assert r.returncode == 0, r.stderr
        digest = next(w for w in r.stdout.split() if w.startswith("sha256:"))
        assert docker("rmi", f"{ref}:v1").returncode == 0
        r = docker("pull", f"{ref}@{digest}")
        assert r.returncode == 0, r.stderr
        r = docker("run", "--rm", f"{ref}@{digest}", "sh", "-c", "cat /made; echo $FROM_COMMIT")
        assert r.stdout == "made\n1\n", r.stderr
    finally:
        reg.proc.terminate()
        reg.proc.wait(10)
        docker("rmi", f"{ref}@{digest}" if digest else f"{ref}:v1")

    r = docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    assert r.returncode == 0 and "Containers" in r.stdout and "Local Volumes" in r.stdout, r
    tar = tmp_path / "export.tar"
    r = docker("export", "-o", str(tar), name)
    assert r.returncode == 0, r.stderr
    imported = f"exported-{name}"
    r = docker("import", str(tar), imported)
    assert r.returncode == 0, r.stderr
    try:
        r = docker("run", "--rm", imported, "cat", "/made")
        assert r.stdout == "made\n", r.stderr
    finally:
        docker("rmi", imported)


def test_prune_takes_a_volume_created_without_a_name(daemon: None) -> None:
    status, made, _ = api("POST", "/v1.43/volumes/create", {})
    assert status == 201, made
    status, named, _ = api("POST", "/v1.43/volumes/create", {"Name": f"keep-{made['Name'][:8]}"})
    try:
        status, pruned, _ = api("POST", "/v1.43/volumes/prune")
        assert made["Name"] in pruned["VolumesDeleted"]
        assert named["Name"] not in pruned["VolumesDeleted"]
    finally:
        api("DELETE", f"/v1.43/volumes/{made['Name']}")
        api("DELETE", f"/v1.43/volumes/{named['Name']}")
