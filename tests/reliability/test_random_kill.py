"""kill -9 of the daemon at random points of create, start, stop, rm and network
set-up; after systemd restarts it, every container is fully there or fully gone.

SDCONTAINER_SOAK=1 runs 200 iterations (about ten minutes); the normal suite a few."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid

from tests.integration.conftest import VENV_BIN, sdc

from .helpers import all_containers, check_invariants, main_pid, reset_daemon, wait_restarted

ITERATIONS = int(os.environ.get("SDCONTAINER_SOAK_ITERATIONS",
                                "200" if os.environ.get("SDCONTAINER_SOAK") == "1" else "10"))
SEED = int(os.environ.get("SDCONTAINER_SOAK_SEED", str(int(time.time()))))


def cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(VENV_BIN / "sdcontainer"), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_random_kill_9(busybox: str, healthy_daemon: None) -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED}, {ITERATIONS} iterations")
    names: list[str] = []
    try:
        for i in range(ITERATIONS):
            live = [c["Name"].lstrip("/") for c in all_containers()]
            running = [c["Name"].lstrip("/") for c in all_containers() if c["State"]["Running"]]
            new = f"rk-{uuid.uuid4().hex[:6]}"
            actions = [
                ("run", ["run", "-d", "--name", new, "-p", f"{19000 + i}:80", busybox,
                         "sleep", "1000"]),
                ("run --rm", ["run", "-d", "--rm", "--name", new, busybox, "sh", "-c",
                              "sleep 0.2"]),
                ("create", ["create", "--name", new, busybox, "sleep", "1000"]),
            ]
            if live:
                victim = rng.choice(live)
                actions += [("start", ["start", victim]), ("rm -f", ["rm", "-f", victim])]
            if running:
                actions.append(("stop", ["stop", "-t", "1", rng.choice(running)]))
            what, argv = rng.choice(actions)
            names.append(new)
            pid = main_pid()
            proc = cli(*argv)
            time.sleep(rng.uniform(0, 0.4))
            os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=60)
            wait_restarted(pid)
            try:
                check_invariants()
            except AssertionError as e:
                raise AssertionError(f"iteration {i} (seed {SEED}): {what}: {e}") from None
            if len(live) > 8:
                for n in live[:4]:
                    sdc("rm", "-f", n)
    finally:
        reset_daemon()
        for n in names:
            sdc("rm", "-f", n)
    check_invariants()
