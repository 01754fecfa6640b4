"""Bind mount propagation (issue 18): docker's rprivate default, rslave, rshared, and
docker's refusal of a source whose mount cannot share (or receive) as asked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import sdc, sh


def mounts_under(path: Path) -> list[str]:
    """The host's mount points at or under PATH (mountinfo's own escapes are not in our
    paths), once per mount."""
    points = [line.split()[4] for line in
              Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def seen_inside(name: str, path: str) -> bool:
    """Whether the container NAME has a mount on PATH."""
    r = sdc("exec", name, "cat", "/proc/mounts")
    assert r.returncode == 0, r.stderr
    return any(line.split()[1] == path for line in r.stdout.splitlines())


def inspect(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sdc("inspect", name, check=True).stdout)[0]
    return doc


def own_mount(path: Path, propagation: str) -> Iterator[Path]:
    """PATH made a mount of its own with PROPAGATION; every mount under it goes after."""
    path.mkdir()
    sh("mount", "--bind", str(path), str(path))
    try:
        sh("mount", f"--make-{propagation}", str(path))
        yield path
    finally:
        sh("umount", "-R", str(path), check=False)
    assert mounts_under(path) == []


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A directory that is a shared mount."""
    yield from own_mount(tmp_path / "shared", "shared")


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Path]:
    """A directory that is a private mount."""
    yield from own_mount(tmp_path / "private", "private")


@pytest.fixture
def second(name: str) -> Iterator[str]:
    """A second container's name, removed after the test."""
    yield f"{name}-2"
    sdc("rm", "-f", f"{name}-2")


def test_rslave_receives_and_rprivate_does_not(busybox: str, name: str, second: str,
                                               shared: Path) -> None:
    for ctr, mode in ((name, ":rslave"), (second, "")):
        r = sdc("run", "-d", "--name", ctr, "-v", f"{shared}:/m{mode}", busybox, "sleep", "300")
        assert r.returncode == 0, r.stderr
    assert inspect(name)["HostConfig"]["Binds"] == [f"{shared}:/m:rslave"]
    assert [m["Propagation"] for m in inspect(name)["Mounts"]] == ["rslave"]
    assert [m["Propagation"] for m in inspect(second)["Mounts"]] == ["rprivate"]
    # Mounted on the host after both started: propagation is done when mount returns.
    (shared / "sub").mkdir()
    sh("mount", "-t", "tmpfs", "tmpfs", str(shared / "sub"))
    assert seen_inside(name, "/m/sub")
    assert not seen_inside(second, "/m/sub")
    sh("umount", str(shared / "sub"))  # ... and so is the unmount, for a slave
    assert not seen_inside(name, "/m/sub")


def test_rshared_shares_both_ways(busybox: str, name: str, shared: Path) -> None:
    r = sdc("run", "-d", "--privileged", "--name", name, "--mount",
            f"type=bind,src={shared},dst=/m,bind-propagation=rshared", busybox, "sleep", "300")
    assert r.returncode == 0, r.stderr
    doc = inspect(name)
    assert doc["HostConfig"]["Mounts"][0]["BindOptions"] == {"Propagation": "rshared"}
    assert doc["Mounts"][0]["Propagation"] == "rshared"
    (shared / "sub").mkdir()
    sh("mount", "-t", "tmpfs", "tmpfs", str(shared / "sub"))
    assert seen_inside(name, "/m/sub")
    r = sdc("exec", name, "sh", "-c", "mkdir /m/inner && mount -t tmpfs inner /m/inner")
    assert r.returncode == 0, r.stderr
    assert mounts_under(shared) == [str(shared), str(shared / "sub"), str(shared / "inner")]
    assert sdc("rm", "-f", name).returncode == 0
    # The container's mount stays on the host, as with docker (the fixture unmounts it);
    # nothing else of the container's is left mounted there or anywhere.
    assert mounts_under(shared) == [str(shared), str(shared / "sub"), str(shared / "inner")]
    assert doc["Id"] not in Path("/proc/self/mountinfo").read_text()


def test_source_that_cannot_share_is_refused(busybox: str, name: str, second: str,
                                             private: Path) -> None:
    # docker's check and words (sdcontainer does not change the host's mounts to suit).
    for ctr, mode, words in ((name, "rshared", "a shared mount"),
                             (second, "slave", "a shared or slave mount")):
        r = sdc("run", "--name", ctr, "-v", f"{private}:/m:{mode}", busybox, "true")
        assert r.returncode == 125, r
        assert f"path {private} is mounted on {private} but it is not {words}" in r.stderr, \
            r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
