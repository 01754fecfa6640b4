"""What the reliability tests share: crash points on and off, the daemon's pid,
and the invariant every test ends with: each container fully there or fully gone."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from tests.integration.conftest import SOCKET, sdc, sh, systemctl, unit_property, wait_for

STATE = Path("/var/lib/sdcontainer")
RUN = Path("/run/sdcontainer")
SERVICE = "sdcontainerd.service"
DROPIN = Path("/run/systemd/system/sdcontainerd.service.d/crash.conf")


def main_pid() -> int:
    """The daemon's pid (0 when it is not running)."""
    return int(unit_property(SERVICE, "MainPID") or 0)


def daemon_env(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def api_up() -> bool:
    return os.path.exists(SOCKET) and sdc("ps", timeout=20).returncode == 0


def reset_daemon() -> None:
    """The daemon active and answering, without crash points armed (restarted if needed)."""
    systemctl("reset-failed", SERVICE)
    pid = main_pid()
    if pid == 0 or b"SDCONTAINER_CRASH_AT=" in daemon_env(pid):
        systemctl("restart", SERVICE, check=True)
    assert wait_for(api_up, 30), "the daemon did not come back"


def arm(*steps: str) -> int:
    """Restart the daemon with crash points STEPS armed; its pid."""
    DROPIN.parent.mkdir(parents=True, exist_ok=True)
    DROPIN.write_text(f"[Service]\nEnvironment=SDCONTAINER_CRASH_AT={','.join(steps)}\n")
    systemctl("daemon-reload", check=True)
    systemctl("reset-failed", SERVICE)
    systemctl("restart", SERVICE, check=True)
    assert wait_for(api_up, 30)
    pid = main_pid()
    assert b"SDCONTAINER_CRASH_AT=" in daemon_env(pid)
    return pid


def disarm() -> None:
    """Remove the crash drop-in (the next start of the daemon is a clean one)."""
    if DROPIN.exists():
        DROPIN.unlink()
        systemctl("daemon-reload", check=True)


def wait_restarted(old_pid: int, timeout: float = 30) -> None:
    """Wait for systemd to have restarted the daemon that was OLD_PID; fail if it did not die."""
    assert wait_for(lambda: not os.path.exists(f"/proc/{old_pid}"), timeout), \
        "the daemon did not die"
    disarm()
    assert wait_for(lambda: main_pid() not in (0, old_pid), timeout) or \
        unit_property(SERVICE, "ActiveState") == "failed"
    reset_daemon()


def inspect(ref: str) -> dict[str, Any] | None:
    r = sdc("inspect", ref)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def all_containers() -> list[dict[str, Any]]:
    ids = sdc("ps", "-aq", "--no-trunc", check=True).stdout.split()
    if not ids:
        return []
    return list(json.loads(sdc("inspect", *ids, check=True).stdout))


def our_veths() -> dict[str, str]:
    """sdcv* links -> owner container id (their ifalias)."""
    out = {}
    for line in sh("ip", "-o", "link", "show").stdout.splitlines():
        m = re.match(r"\d+: (sdcv[0-9a-z]+)[@:]", line)
        if m:
            alias = sh("cat", f"/sys/class/net/{m.group(1)}/ifalias", check=False).stdout.strip()
            out[m.group(1)] = alias
    return out


def running_veths(running: set[str]) -> set[str]:
    """The host-side veth names the endpoint records of RUNNING containers name."""
    names: set[str] = set()
    for cid in running:
        f = STATE / "networks" / "endpoints" / f"{cid}.json"
        if f.exists():
            att = json.loads(f.read_text())["attachment"]
            names |= {i["host_ifname"] for i in att.get("interfaces", [])}
    return names


def ipam_owners() -> set[str]:
    owners: set[str] = set()
    d = STATE / "networks" / "ipam"
    # One file per holder: ipam/<network>/<container id>.json.
    return {f.stem for f in d.glob("*/*.json")} if d.is_dir() else owners


def nft_owners() -> set[str]:
    text = sh("nft", "list", "ruleset", check=False).stdout
    return set(re.findall(r'comment "([0-9a-f]{64})"', text))


def active_scopes() -> set[str]:
    out = sh("systemctl", "list-units", "--plain", "--no-legend", "--state=active,activating,"
             "deactivating", "sdcontainer-*.scope").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def netns_mounts() -> set[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return {m for m in re.findall(r" (/run/sdcontainer/netns/[0-9a-f]{64}) ", text)}


def check_invariants(settle: float = 15) -> None:
    """Every container fully there (running with scope and network, or stopped without
    either) or fully gone; nothing of a gone or stopped one left anywhere."""
    deadline = time.monotonic() + settle
    while True:
        try:
            _check_once()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _check_once() -> None:
    cs = all_containers()
    ids = {c["Id"] for c in cs}
    running = {c["Id"] for c in cs if c["State"]["Running"]}
    running_names = {c["Name"].lstrip("/") for c in cs if c["State"]["Running"]}
    for c in cs:
        st = c["State"]
        assert st["Status"] in ("created", "running", "exited"), (c["Name"], st)
        if st["Running"]:
            assert os.path.exists(f"/proc/{st['Pid']}"), (c["Name"], "running without a process")
    scopes = active_scopes()
    assert scopes == {f"sdcontainer-{n}.scope" for n in running_names}, (scopes, running_names)
    veths = our_veths()
    assert set(veths.values()) <= running, ("veths of stopped or gone containers", veths)
    assert set(veths) <= running_veths(running), ("veths of no running container", veths)
    assert ipam_owners() <= running, ("ip allocations", ipam_owners() - running)
    assert nft_owners() <= running, ("nft rules", nft_owners() - running)
    netns = {Path(p).name for p in netns_mounts()}
    assert netns <= running, ("netns mounts", netns - running)
    netns_dir = RUN / "netns"
    if netns_dir.is_dir():
        files = {f.name for f in netns_dir.iterdir() if re.fullmatch(r"[0-9a-f]{64}", f.name)}
        assert files <= running, ("netns files", files - running)
    for d in (STATE / "containers").iterdir():
        if d.name.endswith(".corrupt"):
            continue
        assert d.name in ids, ("leftover container directory", d)
        assert not temp_files(d), ("temp record", temp_files(d))
        json.loads((d / "container.json").read_text())
    rundirs = RUN / "containers"
    if rundirs.is_dir():
        left = {d.name for d in rundirs.iterdir()} - ids
        assert not left, ("leftover runtime directories", left)
    for d in (STATE / "networks", STATE / "networks" / "endpoints", STATE / "images"):
        if d.is_dir():
            assert not temp_files(d), ("temp record", temp_files(d))
    endpoints = STATE / "networks" / "endpoints"
    if endpoints.is_dir():
        eps = {f.stem for f in endpoints.glob("*.json")}
        assert eps <= running, ("endpoint records", eps - running)
    tmp = STATE / "images" / "tmp"
    if tmp.is_dir():
        assert not list(tmp.iterdir()), ("half-pulled blobs or layers", list(tmp.iterdir()))


# fileio.write_json_atomic's temporary files: mkstemp(prefix=".NAME.") adds eight of
# tempfile's random characters.  Other writers use NAME.tmp.
MKSTEMP_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}")


def temp_files(d: Path) -> list[str]:
    """The names in directory D that a writer left half-done (the atomic writer's
    temporary files), none of which may outlive the write."""
    return sorted(p.name for p in d.iterdir()
                  if MKSTEMP_TEMP.fullmatch(p.name) or p.name.endswith(".tmp"))


def rm_all() -> None:
    for c in all_containers():
        with contextlib.suppress(Exception):
            sdc("rm", "-f", c["Id"], timeout=60)
