"""`generate systemd NAME` keeps every flag: run -> inspect -> generate -> start the unit ->
inspect gives the same container, but for its id, times and what the unit itself decides
(--rm, and systemd's Restart= instead of a restart policy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.conftest import sdc, systemctl, unit_property, wait_for

UNIT_DIR = Path("/etc/systemd/system")


def inspect(ref: str) -> dict[str, Any]:
    r = sdc("inspect", ref)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]  # type: ignore[no-any-return]


def comparable(info: dict[str, Any]) -> dict[str, Any]:
    """INFO without what differs from one container to the next: ids, times, state,
    the per-container files, addresses, and what the unit decides (--rm, restarts)."""
    host = {k: v for k, v in info["HostConfig"].items()
            if k not in ("AutoRemove", "RestartPolicy")}
    nets = info["NetworkSettings"]
    return {
        "Path": info["Path"], "Args": info["Args"], "Name": info["Name"],
        "Image": info["Image"], "Config": info["Config"], "HostConfig": host,
        "Mounts": info["Mounts"], "Systemd": info["Systemd"],
        "Ports": nets["Ports"], "Networks": sorted(nets["Networks"]),
    }


def test_generate_systemd_round_trip(busybox: str, name: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("kept\n")
    r = sdc("run", "-d", "--name", name, "-p", "18090:80", "--hostname", "web1",
            "--tmpfs", "/scratch:size=1m", "--add-host", "db.example:10.1.2.3",
            "--dns", "10.0.0.53", "--dns-search", "example.org",
            "--health-cmd", "test -e /data/file", "--health-interval", "5s",
            "--health-retries", "2", "--cap-drop", "NET_RAW", "--cap-add", "SYS_TIME",
            "-e", "FOO=bar baz", "-e", "EMPTY=", "-v", f"{data}:/data:ro",
            "--restart", "on-failure:3", "--label", "tier=front", "--stop-timeout", "3",
            "--memory", "64m", "--pids-limit", "40", "--init", "--workdir", "/data",
            "--expose", "81", "--shm-size", "8m",
            busybox, "sh", "-c", "sleep 300")
    assert r.returncode == 0, r.stderr
    before = inspect(name)
    r = sdc("generate", "systemd", name)
    assert r.returncode == 0, r.stderr
    unit = f"sdcontainer-{name}.service"
    assert "Restart=on-failure" in r.stdout
    path = UNIT_DIR / unit
    path.write_text(r.stdout)
    try:
        systemctl("daemon-reload", check=True)
        start = systemctl("start", unit)
        assert start.returncode == 0, start.stderr
        assert wait_for(lambda: inspect(name)["Id"] != before["Id"]
                        and inspect(name)["State"]["Running"], timeout=30)
        after = inspect(name)
        assert comparable(after) == comparable(before)
        assert after["HostConfig"]["AutoRemove"] is True
        assert sdc("exec", name, "cat", "/data/file").stdout == "kept\n"
        assert "db.example" in sdc("exec", name, "cat", "/etc/hosts").stdout
    finally:
        systemctl("stop", unit)
        path.unlink()
        systemctl("daemon-reload")
    assert wait_for(lambda: unit_property(unit, "ActiveState") in ("inactive", "failed"))
    assert sdc("inspect", name).returncode != 0  # the unit's container went with it
