"""Names end where they end (issue 13 item 9): Python's `$` also matches before a
trailing newline, so `re.match("^[a-z]+$", "bad\\n")` passes.  A network, container
or image name with a trailing newline is refused, in one line, and nothing is made."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

from tests.api.apiutil import api

from .conftest import sdc, sh

NETWORKS = Path("/var/lib/sdcontainer/networks")


def one_line_error(r: object, what: str) -> None:
    """R (a finished CLI run) failed with a single line that mentions WHAT."""
    rc, err = r.returncode, r.stderr  # type: ignore[attr-defined]
    assert rc != 0, err
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert what in err and "Traceback" not in err, err


def bridges() -> set[str]:
    out = sh("ip", "-o", "link", "show", "type", "bridge").stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


def network_names() -> list[str]:
    return sdc("network", "ls", "--format", "{{.Name}}", check=True).stdout.split()


def nothing_named(stem: str) -> None:
    """No network record, listed network or bridge came of STEM."""
    assert not any(stem in n for n in network_names())
    assert not NETWORKS.is_dir() or not any(stem in p.name for p in NETWORKS.iterdir())


def test_network_name_with_a_trailing_newline_cli(daemon: None) -> None:
    stem = f"n{uuid.uuid4().hex[:8]}"
    before = bridges()
    one_line_error(sdc("network", "create", f"{stem}\n"), "invalid network name")
    one_line_error(sdc("network", "create", f"{stem}\nx"), "invalid network name")
    nothing_named(stem)
    assert bridges() == before
    # The same name without the newline is fine: the check is the name's, not the tool's.
    assert sdc("network", "create", stem).returncode == 0
    try:
        assert stem in network_names()
    finally:
        sdc("network", "rm", stem)


def test_network_name_with_a_trailing_newline_api(daemon: None) -> None:
    stem = f"n{uuid.uuid4().hex[:8]}"
    status, body, _ = api("POST", "/networks/create", {"Name": f"{stem}\n"})
    assert status == 400, body
    assert "invalid network name" in body["message"] and "\n" not in body["message"]
    nothing_named(stem)
    status, body, _ = api("GET", f"/networks/{quote(stem + chr(10))}")
    assert status == 404, body


def test_container_name_with_a_trailing_newline(busybox: str) -> None:
    stem = f"t-{uuid.uuid4().hex[:8]}"
    one_line_error(sdc("create", "--name", f"{stem}\n", busybox, "true"),
                   "invalid container name")
    status, body, _ = api("POST", f"/containers/create?name={quote(stem + chr(10))}",
                          {"Image": busybox, "Cmd": ["true"]})
    assert status == 400, body
    assert "invalid container name" in body["message"] and "\n" not in body["message"]
    assert not any(stem in n for n in sdc("ps", "-a", "--format", "{{.Names}}").stdout.split())
    assert stem not in sh("systemctl", "list-units", "--all", "--no-legend",
                          "sdcontainer-*").stdout


def test_image_reference_with_a_trailing_newline(busybox: str) -> None:
    # The CLI says "Unable to find image ... locally" first, as docker's does; the
    # daemon's refusal is the line that counts.
    r = sdc("create", f"{busybox}\n", "true")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "invalid reference format" in r.stderr.splitlines()[-1], r.stderr
    status, body, _ = api("POST", "/containers/create", {"Image": f"{busybox}\n", "Cmd": ["true"]})
    assert 400 <= status < 500, body
    one_line_error(sdc("tag", busybox, f"{busybox}:x\n"), "invalid reference format")
    listed = [line.split()[:2] for line in sdc("images").stdout.splitlines()]
    assert [busybox, "x"] not in listed, listed


def test_image_refusal_over_the_api_is_one_line(busybox: str) -> None:
    status, body, _ = api("POST", "/containers/create", {"Image": f"{busybox}\n", "Cmd": ["true"]})
    assert 400 <= status < 500, body
    assert "\n" not in body["message"], body
