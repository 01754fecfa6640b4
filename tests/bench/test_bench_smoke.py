"""The bench's entry point runs end to end with tiny numbers (speed is bench/'s business,
not the tests': nothing here asserts a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.box


def test_bench_runs_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    p = subprocess.run(
        [sys.executable, "-m", "bench", "--runs", "2", "--containers", "5", "--parallel", "3",
         "--parallel-rounds", "1", "--profile-runs", "2", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]

    record = json.loads((out / "bench.json").read_text())
    r = record["results"]
    for engine in ("sdcontainer", "podman"):
        assert r["run_none"][engine]["n"] == 2, r["run_none"][engine]
        assert r["run_none"][engine]["failures"] == 0
        assert r["stop"][engine]["failures"] == 0, r["stop"][engine]
        assert r["parallel"][engine]["failures"] == 0, r["parallel"][engine]
        assert r["cli"]["version"][engine]["n"] == 2
        density = r["density"][0][engine]
        assert density["started"] == 5 and density["failures"] == 0, density
        assert density["supervisor_private_kib"] > 0
        assert r["build"]["cold"][engine]["failures"] == 0, r["build"]
        assert r["build"]["cached"][engine]["n"] == 2, r["build"]
    # Bridge networking is measured where it works and said to be missing where not.
    ours = r["run_bridge"]["sdcontainer"]
    assert ours.get("n") == 2 or ours.get("available") is False, ours
    assert r["leftovers"] == {"sdcontainer": 0, "podman": 0}

    table = (out / "results.md").read_text()
    assert "| measurement | unit | sdcontainer | podman | sdcontainer/podman | target |" in table
    assert "run --rm --network none, median" in table
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    profile = (out / "profile.txt").read_text()
    assert "## API calls" in profile and "## Daemon" in profile
