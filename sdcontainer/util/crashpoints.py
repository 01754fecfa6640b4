"""Named crash points: make the daemon die right after a given step.

The reliability tests (tests/reliability) set SDCONTAINER_CRASH_AT=step[,step]
in sdcontainerd's environment (a systemd drop-in), trigger the step, and let
systemd restart the daemon; then they check that every container is either
fully there or fully gone.  Each window between two steps is thus tested
deterministically, not only by the luck of a random kill -9.

The variable is read once, when this module is first imported (at daemon
start); unset, `hit` costs one truthiness test.  Steps, in the order a
container meets them:

    record-written      create: the container's record is on disk
    ip-allocated        start: the IPAM entry exists (bridge mode)
    netns-made          start: the network namespace file is mounted
    veth-up             start: the veth pair exists, configured inside
    nft-rule-added      start: the DNAT rules of published ports exist
    monitor-spawned     start: the monitor is forked, not yet in a scope
    scope-created       start: the scope holds the monitor, workload not started
    workload-started    start: the workload runs, the record still says 'created'
    exit-recorded       exit: the record says 'exited', units not released yet
    rm-network-down     remove: the network is detached, the record still exists
    layer-unpacked      pull/import: a layer is unpacked in tmp/, not yet renamed
    blob-written        pull/import: a blob is complete in tmp/, not yet renamed
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV = "SDCONTAINER_CRASH_AT"
EXIT_CODE = 99

_armed: frozenset[str] = frozenset(
    s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip())


def armed() -> frozenset[str]:
    """The steps this process will crash after."""
    return _armed


def hit(step: str) -> None:
    """Exit at once (no cleanup, no flush) if STEP is armed: a simulated crash."""
    if _armed and step in _armed:
        log.critical("crash point %s reached: exiting with %d", step, EXIT_CODE)
        for h in logging.getLogger().handlers:
            h.flush()
        os._exit(EXIT_CODE)
