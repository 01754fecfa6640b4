"""The .deb installed with apt in the box, used, removed and purged.

Only inside tests/systemd-box (its root is a throwaway overlay: apt's writes
never reach the host), and only in a box of its own (`make test-packaging`):
the tests run in the order written, each step building on the last.  No
network: apt must find every dependency already installed.
"""

from __future__ import annotations

import grp
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import in_box

from .conftest import REPO, sh

DEV_UNIT = Path("/etc/systemd/system/sdcontainerd.service")
DEV_DROPIN = Path("/etc/systemd/system/sdcontainerd.service.d/checkout.conf")
STATE = Path("/var/lib/sdcontainer")
SOCKET = Path("/run/sdcontainer/sdcontainer.sock")


def sdc(*args: str, check: bool = True, timeout: float = 60) -> str:
    """The installed CLI, run by Debian's python3 from / (no venv, no checkout)."""
    return sh("/usr/bin/sdcontainer", *args, check=check, timeout=timeout).stdout


def wait_for(predicate, timeout: float = 20) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def is_active(unit: str) -> str:
    return sh("systemctl", "is-active", unit, check=False).stdout.strip()


def dpkg_status() -> str:
    r = sh("dpkg-query", "-W", "-f=${Status}", "sdcontainer", check=False)
    return r.stdout.strip() if r.returncode == 0 else "not-installed"


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    """apt-get install ./sdcontainer_VERSION_ARCH.deb, offline."""
    if not in_box():
        pytest.skip("installs a package: only inside tests/systemd-box")
    if DEV_UNIT.exists() or DEV_DROPIN.exists():
        pytest.skip("the checkout's sdcontainerd is installed in this box (tests/integration): "
                    "run `make test-packaging` for a box of its own")
    assert dpkg_status() == "not-installed"
    # A docker-built host carries a policy-rc.d that forbids starting services
    # (exit 101); a real Debian machine has none.  Set it aside in the box's
    # throwaway root so that the maintainer scripts act as they would there.
    policy = Path("/usr/sbin/policy-rc.d")
    aside = policy.with_name("policy-rc.d.sdcontainer-test")
    if policy.exists():
        policy.rename(aside)
    # The box has no network: every dependency must already be installed.
    # (Not --no-download: apt 2.6 then refuses local .deb files as "not absolute".)
    r = sh("apt-get", "install", "-y", "--no-install-recommends", f"./{deb.name}",
           cwd=deb.parent, timeout=300)
    assert "sdcontainer" in r.stdout
    yield deb
    # Whatever a failed test left behind goes with the box; purge anyway.
    sh("apt-get", "purge", "-y", "sdcontainer", check=False, timeout=300)
    if aside.exists():
        aside.rename(policy)


def test_installed_through_apt(installed: Path) -> None:
    assert dpkg_status() == "install ok installed"
    assert sh("dpkg-query", "-W", "-f=${Version}", "sdcontainer").stdout == \
        re.search(r"_([^_]+)_[^_]+\.deb$", installed.name).group(1)  # type: ignore[union-attr]
    # Debian's python3 imports the packaged code, next to Debian's libraries.
    r = sh("/usr/bin/python3", "-c", "import sdcontainer, pystemd, dbus_fast, pyroute2; "
           "print(sdcontainer.__file__); print(pyroute2.__file__)")
    assert r.stdout.splitlines()[0] == "/usr/lib/python3/dist-packages/sdcontainer/__init__.py"
    assert r.stdout.splitlines()[1].startswith("/usr/lib/python3/dist-packages/")


def test_service_enabled_and_started(installed: Path) -> None:
    assert sh("systemctl", "is-enabled", "sdcontainerd.service").stdout.strip() == "enabled"
    assert wait_for(lambda: is_active("sdcontainerd.service") == "active"), \
        sh("journalctl", "-b", "--no-pager", "-n", "60", "-u", "sdcontainerd.service",
           check=False).stdout
    assert sh("systemctl", "show", "-p", "FragmentPath", "--value",
              "sdcontainerd.service").stdout.strip() == "/lib/systemd/system/sdcontainerd.service"
    main_pid = sh("systemctl", "show", "-p", "MainPID", "--value",
                  "sdcontainerd.service").stdout.strip()
    cmdline = Path(f"/proc/{main_pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:2] == [b"/usr/bin/python3", b"/usr/bin/sdcontainerd"]
    # sysusers and tmpfiles entries applied; the socket belongs to the group.
    gid = grp.getgrnam("sdcontainer").gr_gid
    assert wait_for(SOCKET.exists)
    assert os.stat(SOCKET).st_gid == gid and (os.stat(SOCKET).st_mode & 0o777) == 0o660
    assert (os.stat(STATE).st_mode & 0o777) == 0o700


def test_version_names_the_commit(installed: Path) -> None:
    out = sdc("version")
    head = sh("git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD").stdout.strip()
    assert re.search(rf"Git commit: {head}(-dirty)?$", out, re.M), out
    assert "Server:" in out


def test_container_end_to_end(installed: Path, tmp_path: Path) -> None:
    # README's quick start, from installed files only: no checkout.
    tar = tmp_path / "busybox.tar"
    sh("/usr/lib/sdcontainer/busybox-rootfs", str(tar), cwd=tmp_path)
    sdc("import", str(tar), "busybox")
    assert sdc("run", "--rm", "busybox", "echo", "hi", timeout=120) == "hi\n"
    r = sh("/usr/bin/sdcontainer", "run", "--rm", "busybox", "sh", "-c", "exit 3",
           check=False, timeout=120)
    assert r.returncode == 3
    # A named container, left stopped: its record must survive removal of the package.
    sdc("run", "--name", "kept", "busybox", "true", timeout=120)
    assert "kept" in sdc("ps", "-a")


def scope_procs(unit: str) -> list[int]:
    cgroup = sh("systemctl", "show", "-p", "ControlGroup", "--value", unit).stdout.strip()
    assert cgroup, unit
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"):
        procs = Path(f"{root}{cgroup}/cgroup.procs")  # unified, hybrid or v1 alone
        if procs.exists():
            return [int(p) for p in procs.read_text().split()]
    raise AssertionError(f"no cgroup.procs for {cgroup}")


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_supervisor_is_the_native_monitor(installed: Path) -> None:
    """A running container's supervisor is the packaged C binary, not a Python monitor."""
    sdc("run", "-d", "--name", "native", "busybox", "sleep", "1000", timeout=120)
    try:
        assert wait_for(lambda: is_active("sdcontainer-native.scope") == "active")
        # The scope holds the supervisor and the workload (its child); the supervisor
        # itself was double-forked, so its parent is outside the scope.
        procs = scope_procs("sdcontainer-native.scope")
        supervisors = [p for p in procs if parent(p) not in procs]
        assert len(supervisors) == 1, procs
        assert any(parent(p) == supervisors[0] for p in procs), procs  # the workload
        assert os.readlink(f"/proc/{supervisors[0]}/exe") == \
            "/usr/libexec/sdcontainer/sdc-monitor"
        # Its exec sessions: packaged Python forked by the C loop.
        assert sdc("exec", "native", "echo", "from exec") == "from exec\n"
    finally:
        sdc("rm", "-f", "native", check=False)


def test_readme_and_docs_installed(installed: Path) -> None:
    doc = Path("/usr/share/doc/sdcontainer")
    readme = next(doc.glob("README.md*"))
    text = sh("zcat", "-f", str(readme)).stdout
    # The route a newcomer follows, as the README tells it.
    assert "## Install" in text and "DOCKER_HOST=unix:///run/sdcontainer/sdcontainer.sock" in text
    assert "/usr/lib/sdcontainer/busybox-rootfs" in text
    shipped = {p.name.split(".md")[0] for p in (doc / "docs").iterdir()}
    assert {"architecture", "security", "networking"} <= shipped, shipped


def test_man_and_completion_installed(installed: Path) -> None:
    for page in ("sdcontainer", "sdcontainerd", "sdcontainer.toml", "sdcontainer.container"):
        r = sh("man", "--pager=cat", page, env={"MANWIDTH": "80"})
        assert r.returncode == 0 and "SEE ALSO" in r.stdout
    r = sh("bash", "-c", "source /usr/share/bash-completion/completions/sdcontainer; "
           "complete -p sdcontainer")
    assert "_sdcontainer" in r.stdout


def test_remove_stops_the_service_and_keeps_the_data(installed: Path) -> None:
    sdc("run", "-d", "--name", "live", "busybox", "sleep", "1000", timeout=120)
    assert wait_for(lambda: is_active("sdcontainer-live.scope") == "active")
    records = {p.name for p in STATE.iterdir()}
    assert records
    sh("apt-get", "remove", "-y", "sdcontainer", timeout=300)
    # Removal stops the containers with the daemon (prerm); an upgrade would not.
    assert is_active("sdcontainer-live.scope") != "active"
    assert dpkg_status() == "deinstall ok config-files"
    assert is_active("sdcontainerd.service") in ("inactive", "unknown")
    assert not Path("/usr/bin/sdcontainer").exists()
    assert not Path("/lib/systemd/system/sdcontainerd.service").exists()
    assert not Path("/usr/lib/python3/dist-packages/sdcontainer").exists()
    assert {p.name for p in STATE.iterdir()} == records
    assert any(STATE.rglob("*")), "container and image data kept"
    grp.getgrnam("sdcontainer")  # the group stays, as Debian keeps system groups


def test_purge_deletes_the_state(installed: Path) -> None:
    sh("apt-get", "purge", "-y", "sdcontainer", timeout=300)
    assert dpkg_status() in ("not-installed", "unknown ok not-installed")
    # In the box /var/lib/sdcontainer is a mount point: emptied, the directory stays.
    assert not STATE.exists() or list(STATE.iterdir()) == []
    # /run/sdcontainer is removed best-effort: a mount (netns) left under it may keep it.
    run = Path("/run/sdcontainer")
    assert not run.exists() or all(os.path.ismount(p) or p.is_dir() for p in run.rglob("*"))
    assert not Path("/etc/systemd/system/multi-user.target.wants/sdcontainerd.service").exists()
    assert is_active("sdcontainerd.service") in ("inactive", "unknown")
