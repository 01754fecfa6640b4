"""Container stats from a unified (cgroup v2) hierarchy, as on a host booted with
systemd.unified_cgroup_hierarchy=1 (this machine is hybrid, so the box cannot show it)."""

from __future__ import annotations

from pathlib import Path

from sdcontainer.engine.stats import sample_dirs

GIB = 1 << 30


def scope(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "sdcontainer.slice" / "sdcontainer-web.slice" / "sdcontainer-web.scope"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_v2_memory_cpu_and_pids(tmp_path: Path) -> None:
    d = scope(tmp_path, {
        "memory.current": "5242880\n", "memory.max": "67108864\n",
        "memory.stat": "anon 4194304\nfile 1048576\ninactive_file 524288\n",
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                    "nr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n",
        "pids.current": "3\n", "pids.max": "100\n"})
    s = sample_dirs({"": d}, 8 * GIB)
    assert s.memory["usage"] == 5242880 and s.memory["limit"] == 64 << 20
    assert s.memory["stats"]["inactive_file"] == 524288
    usage = s.cpu["cpu_usage"]
    assert usage["total_usage"] == 2_500_000_000
    assert (usage["usage_in_usermode"], usage["usage_in_kernelmode"]) == \
        (2_000_000_000, 500_000_000)
    assert s.cpu["throttling_data"] == {"periods": 10, "throttled_periods": 2,
                                        "throttled_time": 3_000_000}
    assert s.pids == {"current": 3, "limit": 100}


def test_v2_without_limits_reports_the_host(tmp_path: Path) -> None:
    d = scope(tmp_path, {"memory.current": "1024\n", "memory.max": "max\n",
                         "cpu.stat": "usage_usec 0\n", "pids.current": "1\n",
                         "pids.max": "max\n"})
    s = sample_dirs({"": d}, 8 * GIB)
    assert s.memory["limit"] == 8 * GIB and s.memory["usage"] == 1024
    assert s.pids == {"current": 1}
