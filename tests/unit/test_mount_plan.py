"""The launcher's mount plan as data, and symlink resolution inside a rootfs (no root,
no box).  Applying the plan needs the box: tests/integration/test_security.py."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from sdcontainer.model.spec import BIND_PROPAGATIONS, Device, LaunchSpec, MountSpec
from sdcontainer.runtime import syscalls as sc
from sdcontainer.runtime.launcher import mounts
from sdcontainer.runtime.launcher.mounts import MountOp, plan, resolve_in_root
from sdcontainer.runtime.launcher.security import MASKED_PATHS, READONLY_PATHS

NSN = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def spec(**over: Any) -> LaunchSpec:
    base: dict[str, Any] = dict(
        id="c" * 64, name="t", scope="sdcontainer-t.scope", argv=["true"], env=[], cwd="/",
        user="", hostname="t", tty=False, open_stdin=False, init=False, read_only=False,
        layers=["/l0"], upper="/u", work="/w", rootfs="/r", mounts=[], net="new",
        etc_files={"/etc/resolv.conf": "/run/x/resolv.conf", "/etc/hosts": "/run/x/hosts",
                   "/etc/hostname": "/run/x/hostname"},
        control_socket="/run/x/control", exit_file="/x/exit.json", journal_fields={},
        masked_paths=list(MASKED_PATHS), readonly_paths=list(READONLY_PATHS))
    base.update(over)
    return LaunchSpec(**base)


def kinds(ops: list[MountOp]) -> list[tuple[str, str]]:
    return [(op.kind, op.target) for op in ops]


def by_target(ops: list[MountOp], target: str) -> MountOp:
    found = [op for op in ops if op.target == target]
    assert len(found) == 1, (target, found)
    return found[0]


def test_default_plan() -> None:
    ops = plan(spec())
    assert kinds(ops) == [
        ("mount", "/proc"), ("mount", "/dev"),
        *[("device", f"/dev/{n}") for n in ("null", "zero", "full", "random", "urandom", "tty")],
        ("mount", "/dev/pts"), ("symlink", "/dev/ptmx"), ("symlink", "/dev/fd"),
        ("symlink", "/dev/stdin"), ("symlink", "/dev/stdout"), ("symlink", "/dev/stderr"),
        ("mount", "/dev/shm"), ("mount", "/dev/mqueue"), ("mount", "/sys"),
        *[("mask", p) for p in MASKED_PATHS], *[("readonly", p) for p in READONLY_PATHS],
        ("bind", "/etc/hostname"), ("bind", "/etc/hosts"), ("bind", "/etc/resolv.conf"),
    ]
    assert by_target(ops, "/proc") == MountOp("mount", "/proc", "proc", "proc", NSN,
                                              special_ok=True)
    assert by_target(ops, "/sys").flags == NSN | sc.MS_RDONLY
    dev = by_target(ops, "/dev")
    assert (dev.fstype, dev.data) == ("tmpfs", "mode=755,size=65536k")
    assert not dev.flags & sc.MS_NODEV  # device nodes must work in it
    assert dev.flags & sc.MS_NOSUID
    null = by_target(ops, "/dev/null")
    assert (null.major, null.minor, null.source) == (1, 3, "")
    pts = by_target(ops, "/dev/pts")
    assert "newinstance" in pts.data and "ptmxmode=0666" in pts.data  # never the host's ptys
    assert by_target(ops, "/dev/ptmx").source == "pts/ptmx"
    assert by_target(ops, "/dev/stderr").source == "/proc/self/fd/2"
    etc = by_target(ops, "/etc/hosts")
    assert (etc.source, etc.is_file, etc.special_ok) == ("/run/x/hosts", True, False)


def test_only_the_launchers_own_ops_may_touch_proc_sys_dev() -> None:
    ops = plan(spec(mounts=[MountSpec("tmpfs", "/data")]))
    for op in ops:
        own = op.target.split("/")[1] in ("proc", "sys", "dev")
        assert op.special_ok == own, op


def test_privileged_plan() -> None:
    ops = plan(spec(privileged=True))
    assert by_target(ops, "/sys").flags == NSN  # writable
    devices = [op for op in ops if op.kind == "device"]
    assert devices, "a node for each host device"
    assert all(op.special_ok and op.fstype in ("b", "c") for op in devices)
    targets = {op.target for op in devices}
    assert "/dev/ptmx" not in targets and "/dev/console" not in targets
    assert not any(t.startswith(("/dev/pts/", "/dev/shm/", "/dev/mqueue/")) for t in targets)
    if os.path.exists("/dev/null"):
        assert by_target(devices, "/dev/null").major == 1
    # Never a bind of the host's /dev: a fresh tmpfs with nodes in it.
    assert by_target(ops, "/dev").fstype == "tmpfs"
    assert not [op for op in ops if op.kind == "bind" and op.source.startswith("/dev")]


def test_explicit_devices_follow_the_default_nodes() -> None:
    dev = Device(host="/dev/fuse", path="/dev/fuse", type="c", major=10, minor=229)
    ops = plan(spec(devices=[dev]))
    fuse = by_target(ops, "/dev/fuse")
    assert (fuse.kind, fuse.source, fuse.fstype, fuse.major, fuse.minor) == (
        "device", "/dev/fuse", "c", 10, 229)
    order = [op.target for op in ops]
    assert order.index("/dev/tty") < order.index("/dev/fuse") < order.index("/dev/pts")


def test_read_only_rootfs_changes_no_mount_of_the_plan() -> None:
    # --read-only is the overlay's business (mounted before the plan); /dev, /dev/shm,
    # /proc and the volumes stay as they are, as with docker.
    assert plan(spec(read_only=True)) == plan(spec())


def test_unmasked_spec_has_no_masks() -> None:
    ops = plan(spec(masked_paths=[], readonly_paths=[]))
    assert not [op for op in ops if op.kind in ("mask", "readonly")]


def test_volumes_and_tmpfs(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    ops = plan(spec(mounts=[
        MountSpec("bind", "/data", str(tmp_path / "dir")),
        MountSpec("bind", "/etc/app.conf", str(tmp_path / "file"), readonly=True,
                  propagation="rslave"),
        MountSpec("tmpfs", "/run"),
        MountSpec("tmpfs", "/cache", options="size=64m,mode=0700", readonly=True),
    ]))
    tail = ops[-4:]
    assert tail == [  # a bind is rprivate unless asked otherwise, as with docker
        MountOp("bind", "/data", str(tmp_path / "dir"), is_file=False, propagation="rprivate"),
        MountOp("bind", "/etc/app.conf", str(tmp_path / "file"), readonly=True, is_file=True,
                propagation="rslave"),
        MountOp("mount", "/run", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777"),
        MountOp("mount", "/cache", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
                "size=64m,mode=0700", readonly=True),
    ]
    # Volumes come after the /etc files: a volume on /etc wins over them.
    assert kinds(ops)[-7:-4] == [("bind", "/etc/hostname"), ("bind", "/etc/hosts"),
                                 ("bind", "/etc/resolv.conf")]


def test_propagation_flags_cover_every_mode() -> None:
    assert set(mounts.PROPAGATION) == set(BIND_PROPAGATIONS)
    assert mounts.PROPAGATION["rshared"] == sc.MS_SHARED | sc.MS_REC
    assert mounts.PROPAGATION["slave"] == sc.MS_SLAVE


def test_source_mount_is_found_by_mount_id() -> None:
    assert mounts.source_mount("/proc/self")[0] == "/proc"


def test_plan_is_data() -> None:
    op = plan(spec())[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.target = "/elsewhere"  # type: ignore[misc]


# -- resolve_in_root ------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "srv" / "data").mkdir(parents=True)
    return r


def test_plain_and_missing_paths(root: Path) -> None:
    assert resolve_in_root(str(root), "/etc") == f"{root}/etc"
    assert resolve_in_root(str(root), "srv//data/./x/y") == f"{root}/srv/data/x/y"
    assert resolve_in_root(str(root), "/") == str(root)
    assert resolve_in_root(str(root), "") == str(root)


def test_dotdot_stops_at_the_root(root: Path) -> None:
    assert resolve_in_root(str(root), "/../../etc") == f"{root}/etc"
    assert resolve_in_root(str(root), "/srv/../../../srv/data/..") == f"{root}/srv"


def test_absolute_link_is_taken_inside_the_root(root: Path) -> None:
    os.symlink("/etc", root / "abs")
    os.symlink("/", root / "srv" / "top")
    assert resolve_in_root(str(root), "/abs/passwd") == f"{root}/etc/passwd"
    assert resolve_in_root(str(root), "/srv/top/srv/data") == f"{root}/srv/data"


def test_relative_link(root: Path) -> None:
    os.symlink("../etc", root / "srv" / "rel")
    os.symlink("data", root / "srv" / "d")
    assert resolve_in_root(str(root), "/srv/rel/x") == f"{root}/etc/x"
    assert resolve_in_root(str(root), "/srv/d") == f"{root}/srv/data"


def test_links_that_climb_out_stay_in(root: Path) -> None:
    os.symlink("../../../../../../proc/sys/kernel", root / "escape")
    os.symlink("/../../..", root / "srv" / "up")
    assert resolve_in_root(str(root), "/escape") == f"{root}/proc/sys/kernel"
    assert resolve_in_root(str(root), "/srv/up/etc") == f"{root}/etc"


def test_chained_links(root: Path) -> None:
    os.symlink("b", root / "a")
    os.symlink("/c", root / "b")
    os.symlink("srv/data", root / "c")
    assert resolve_in_root(str(root), "/a/f") == f"{root}/srv/data/f"


@pytest.mark.parametrize("links", [{"loop": "loop"}, {"x": "y", "y": "/x"},
                                   {"self": "./self/."}])
def test_symlink_loops_are_eloop(root: Path, links: dict[str, str]) -> None:
    for name, target in links.items():
        os.symlink(target, root / name)
    first = next(iter(links))
    with pytest.raises(OSError) as e:
        resolve_in_root(str(root), f"/{first}/z")
    assert e.value.errno == 40


def test_forty_hops_are_allowed(root: Path) -> None:
    for i in range(40):
        os.symlink(f"l{i + 1}", root / f"l{i}")
    os.symlink("/srv", root / "l40")
    with pytest.raises(OSError):
        resolve_in_root(str(root), "/l0")  # 41 links
    assert resolve_in_root(str(root), "/l1") == f"{root}/srv"  # 40 links


def test_result_always_lies_under_the_root(root: Path) -> None:
    os.symlink("/..", root / "r1")
    os.symlink("../..", root / "etc" / "r2")
    for path in ("/r1", "/etc/r2", "/etc/r2/r1/..", "/../r1/etc/r2/x"):
        out = resolve_in_root(str(root), path)
        assert out == str(root) or out.startswith(f"{root}/"), (path, out)


def test_mounts_module_has_no_ambient_state() -> None:
    # plan() must be a function of the spec (and, privileged, of the host's /dev).
    assert plan(spec()) == plan(spec())
    assert mounts.DEVICES[0] == ("null", 1, 3)
