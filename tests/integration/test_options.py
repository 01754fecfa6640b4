"""run's flags: env, workdir, user, hostname, entrypoint, volumes, tmpfs, read-only."""

from __future__ import annotations

from pathlib import Path

from .conftest import sdc


def out(*args: str) -> str:
    r = sdc("run", "--rm", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_env_and_env_file(busybox: str, tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text("# comment\nFROM_FILE=yes\nOVER=file\n")
    assert out("-e", "A=1", "--env-file", str(f), "-e", "OVER=flag", busybox, "sh", "-c",
               "echo $A $FROM_FILE $OVER $HOSTNAME") .split()[:3] == ["1", "yes", "flag"]


def test_workdir_user_hostname(busybox: str) -> None:
    assert out("-w", "/srv/app", busybox, "pwd") == "/srv/app"
    assert out("-u", "nobody", busybox, "id") == "uid=65534(nobody) gid=65534(nogroup) " \
        "groups=65534(nogroup)"
    assert out("-u", "1234:5", busybox, "id", "-u") == "1234"
    assert out("--hostname", "myhost", busybox, "hostname") == "myhost"


def test_entrypoint(busybox: str) -> None:
    assert out("--entrypoint", "echo", busybox, "from", "entrypoint") == "from entrypoint"


def test_bind_volume_ro_and_rw(busybox: str, tmp_path: Path) -> None:
    (tmp_path / "in").write_text("host data\n")
    assert out("-v", f"{tmp_path}:/data:ro", busybox, "cat", "/data/in") == "host data"
    r = sdc("run", "--rm", "-v", f"{tmp_path}:/data:ro", busybox, "touch", "/data/x")
    assert r.returncode != 0 and "Read-only" in r.stderr
    out("-v", f"{tmp_path}:/data", busybox, "sh", "-c", "echo new > /data/made")
    assert (tmp_path / "made").read_text() == "new\n"
    out("--mount", f"type=bind,source={tmp_path},target=/m", busybox, "test", "-f", "/m/in")


def test_tmpfs_and_read_only(busybox: str) -> None:
    r = sdc("run", "--rm", "--read-only", busybox, "touch", "/x")
    assert r.returncode != 0 and "Read-only" in r.stderr
    assert out("--read-only", "--tmpfs", "/scratch", busybox, "sh", "-c",
               "touch /scratch/x && grep ' /scratch ' /proc/mounts | cut -d' ' -f3") == "tmpfs"


def test_minimal_dev_and_mounts(busybox: str) -> None:
    devs = out(busybox, "ls", "/dev").split()
    for d in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx"):
        assert d in devs
    mounts = out(busybox, "cat", "/proc/mounts")
    assert " /sys sysfs ro," in mounts
    assert " / overlay " in mounts
    assert out(busybox, "sh", "-c", "echo $$") == "1"


def test_container_rootfs_is_private(busybox: str, name: str) -> None:
    sdc("run", "--name", name, busybox, "sh", "-c", "echo data > /written", check=True)
    assert out(busybox, "sh", "-c", "test -e /written && echo leak || echo clean") == "clean"
