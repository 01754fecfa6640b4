from __future__ import annotations

from .conftest import sdc, unit_property


def test_run_prints_and_exits(busybox: str) -> None:
    r = sdc("run", "--rm", busybox, "echo", "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"


def test_exit_code(busybox: str, name: str) -> None:
    r = sdc("run", "--name", name, busybox, "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    assert sdc("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "3"


def test_detached_scope(busybox: str, name: str) -> None:
    r = sdc("run", "-d", "--name", name, "-m", "64m", "--pids-limit", "50", busybox, "sleep", "100")
    assert r.returncode == 0, r.stderr
    unit = f"sdcontainer-{name}.scope"
    assert unit_property(unit, "ActiveState") == "active"
    assert unit_property(unit, "MemoryMax") == str(64 * 1024 * 1024)
