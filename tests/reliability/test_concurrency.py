"""Parallel clients: names are unique, addresses distinct."""

from __future__ import annotations

import concurrent.futures
import json
import uuid

from tests.integration.conftest import sdc

from .helpers import check_invariants


def test_50_parallel_runs_with_clashing_names(busybox: str) -> None:
    unique = [f"clash-{uuid.uuid4().hex[:6]}" for _ in range(25)]
    names = unique + unique  # every name asked for twice, at the same time
    try:
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            results = list(pool.map(
                lambda n: (n, sdc("run", "-d", "--name", n, busybox, "sleep", "120",
                                  timeout=180)), names))
        for n in unique:
            rs = [r for name, r in results if name == n]
            won = [r for r in rs if r.returncode == 0]
            lost = [r for r in rs if r.returncode != 0]
            assert len(won) == 1, (n, [r.stderr for r in rs])
            assert lost[0].returncode == 125 and "already in use" in lost[0].stderr, \
                lost[0].stderr
        cs = json.loads(sdc("inspect", *unique, check=True).stdout)
        assert all(c["State"]["Running"] for c in cs)
        ips = [c["NetworkSettings"]["IPAddress"] for c in cs]
        assert all(ips) and len(set(ips)) == len(ips), ips
        check_invariants()
    finally:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: sdc("rm", "-f", n, timeout=120), unique))
    check_invariants()
