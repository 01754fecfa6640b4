"""docker-compose 1.29 with a top-level `volumes:` section."""

from __future__ import annotations

from pathlib import Path

from tests.api.apiutil import docker
from tests.api.test_compose import compose
from tests.integration.conftest import wait_for

COMPOSE = """\
version: "3"
services:
  db:
    image: {image}
    command: ["sh", "-c", "cat /data/seen 2>/dev/null; date >> /data/seen; exec sleep 100"]
    network_mode: none  # volumes only: no network to set up
    volumes: ["dbdata:/data", "/scratch"]
volumes:
  dbdata: {{}}
"""


def test_compose_volume_survives_up_and_goes_with_down_v(busybox: str, tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.format(image=busybox))
    vol = "apitest_dbdata"
    try:
        r = compose(tmp_path, "up", "-d")
        assert r.returncode == 0, r.stderr
        assert vol in docker("volume", "ls", "-q").stdout.split()
        path = Path(f"/var/lib/sdcontainer/volumes/{vol}/_data/seen")
        assert wait_for(path.exists, timeout=20)
        r = compose(tmp_path, "down", "-t", "1")
        assert r.returncode == 0, r.stderr
        assert vol in docker("volume", "ls", "-q").stdout.split()  # kept without -v
        r = compose(tmp_path, "up", "-d")
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: len(path.read_text().splitlines()) == 2, timeout=20)
        assert wait_for(lambda: path.read_text().splitlines()[0] in compose(
            tmp_path, "logs", "--no-color", "db").stdout, timeout=20)
    finally:
        r = compose(tmp_path, "down", "-v", "-t", "1")
    assert r.returncode == 0, r.stderr
    assert vol not in docker("volume", "ls", "-q").stdout.split()
    assert not Path(f"/var/lib/sdcontainer/volumes/{vol}").exists()
