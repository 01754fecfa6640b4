"""The engine's concurrency rules (docs/architecture.md), each raced for real."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

from .conftest import SOCKET, sdc, sh, systemctl, unit_property, wait_for

STATE = Path("/var/lib/sdcontainer/containers")


def test_start_racing_rm_never_brings_a_record_back(busybox: str) -> None:
    for i in range(15):
        name = f"race-{os.getpid()}-{i}"
        cid = sdc("create", "--name", name, busybox, "sleep", "100", check=True).stdout.strip()
        results: dict[str, int] = {}

        def act(out: dict[str, int], verb: str, *args: str) -> None:
            out[verb] = sdc(verb, *args).returncode

        threads = [threading.Thread(target=act, args=(results, "start", name)),
                   threading.Thread(target=act, args=(results, "rm", "-f", name))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        listed = sdc("ps", "-a", "-q", "--no-trunc").stdout.split()
        if cid not in listed:
            # Removed: nothing of it may come back, whichever finished last.
            assert not (STATE / cid).exists(), (results, sorted(os.listdir(STATE / cid)))
            assert unit_property(f"sdcontainer-{name}.scope", "ActiveState") in ("inactive", "")
        sdc("rm", "-f", name)
        assert not (STATE / cid).exists()


def test_zygote_death_restarts_the_daemon(busybox: str, name: str) -> None:
    sdc("run", "-d", "--name", name, busybox, "sleep", "1000", check=True)
    main = int(unit_property("sdcontainerd.service", "MainPID"))
    children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    zygotes = [int(p) for p in children
               if Path(f"/proc/{p}/comm").read_text().strip() == "sdc-zygote"]
    assert len(zygotes) == 1, children
    os.kill(zygotes[0], signal.SIGKILL)
    # The daemon exits with a failure and systemd starts a new one, with a new zygote.
    assert wait_for(lambda: unit_property("sdcontainerd.service", "MainPID") not in
                    ("0", str(main)), timeout=30)
    assert wait_for(lambda: os.path.exists(SOCKET) and sdc("ps").returncode == 0, timeout=30)
    assert "the zygote" in sh("journalctl", "-u", "sdcontainerd.service", "-o", "cat",
                              "--no-pager").stdout
    # The running container lived on; a new one starts.
    state = json.loads(sdc("inspect", name).stdout)[0]["State"]
    assert state["Running"], state
    assert sdc("run", "--rm", busybox, "echo", "ok").stdout == "ok\n"
    systemctl("reset-failed", "sdcontainerd.service")
