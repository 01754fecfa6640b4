"""The entry point: `python3 -m bench [--runs N] [--containers 100,500] ...`.

Outside systemd (PID 1 is something else) it installs what it needs (tools/install-deps)
and reruns itself inside the throwaway box (tests/systemd-box); under systemd it starts
sdcontainerd from this checkout, imports one busybox tarball into both engines, measures,
and writes bench/results/{bench.json,results.md,chart.png,profile.txt}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import build, memory, profiling, report, scenarios
from .engines import (
    PODMAN_DIR,
    REPO,
    SOCKET,
    VENV_BIN,
    Engine,
    daemon_pid,
    output,
    podman,
    sdcontainer,
)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30, help="runs per latency figure (30)")
    p.add_argument("--containers", default="100,500",
                   help="density sizes, comma-separated (100,500)")
    p.add_argument("--parallel", type=int, default=20, help="parallel runs (20)")
    p.add_argument("--parallel-rounds", type=int, default=3, help="rounds of them (3)")
    p.add_argument("--profile-runs", type=int, default=30,
                   help="runs sampled by py-spy (30; 0: no profile)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                   help="where the results go (bench/results)")
    p.add_argument("--memory", action="store_true",
                   help="only the supervisor's memory per container, with the Python monitor "
                   "as well (memory.json, memory.md)")
    p.add_argument("--no-python-monitor", action="store_true",
                   help="with --memory: leave out the Python monitor (the figures before "
                   "issue 17), only the native supervisor and podman")
    p.add_argument("--build", action="store_true",
                   help="only the image builds, cold and cached (build.json, build.md)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def systemd_is_pid1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def outer(argv: list[str]) -> int:
    """Install what is needed, then run the bench under systemd: the host's or a box's."""
    subprocess.run([str(REPO / "tools" / "install-deps")], check=True)
    out = parse(argv).out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    inner = [str(VENV_BIN / "python"), "-m", "bench", "--inside", *argv, "--out", str(out)]
    if systemd_is_pid1():
        return subprocess.run(inner, cwd=REPO).returncode
    log("systemd is not PID 1 here: running in a throwaway systemd box (tests/systemd-box)")
    binds = [] if out.is_relative_to(REPO) else ["--bind", str(out)]
    box = [str(REPO / "tests" / "systemd-box"), *binds, "--", "env", "-C", str(REPO), *inner]
    return subprocess.run(box).returncode


def machine(where: str) -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    hybrid = Path("/sys/fs/cgroup/unified").is_dir()
    storage = output(["stat", "-f", "-c", "%T", "/var/lib/sdcontainer"]).strip()
    return {
        "description": model or platform.processor() or "unknown CPU",
        "cpus": os.cpu_count(), "mem_gib": mem_kib / 1024 / 1024, "kernel": platform.release(),
        "where": where, "cgroups": "v1 hybrid" if hybrid else "see /sys/fs/cgroup",
        "podman": output(["podman", "--version"]).split()[-1],
        "runc": output(["runc", "--version"]).splitlines()[0].split()[-1],
        "python": platform.python_version(),
        "sdcontainer_storage_fs": storage,
        "podman_storage_fs": output(["stat", "-f", "-c", "%T", str(PODMAN_DIR.parent)]).strip(),
    }


def prepare(engines: list[Engine]) -> None:
    """Our daemon running; the same busybox tarball imported into both engines."""
    subprocess.run([str(REPO / "tools" / "install-units"), str(VENV_BIN)], check=True)
    subprocess.run(["systemctl", "start", "sdcontainerd.service"], check=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(SOCKET) and time.monotonic() < deadline:
        time.sleep(0.05)
    PODMAN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tar = Path(d) / "busybox-rootfs.tar"
        subprocess.run([str(REPO / "tools" / "busybox-rootfs"), str(tar)], check=True)
        for e in engines:
            output([*e.cli, "import", str(tar), e.image], timeout=300)
    for e in engines:
        r = e.run("--rm", "--network", "none", e.image, "true")
        if r.rc != 0:
            raise RuntimeError(f"{e.name} cannot run a container here: {r.stderr}")
    log("both engines run the image")


def inside(ns: argparse.Namespace) -> int:
    where = ("tests/systemd-box" if b"container=sdcbox" in Path("/proc/1/environ").read_bytes()
             else "the host's systemd")
    a, b = sdcontainer(), podman()
    engines = [a, b]
    prepare(engines)
    if ns.memory:
        sizes = [int(n) for n in ns.containers.split(",") if n.strip()]
        return memory.run(a, b, sizes, ns.out, where, log, not ns.no_python_monitor)
    if ns.build:
        res = build.run(engines, ns.runs, log)
        ns.out.mkdir(parents=True, exist_ok=True)
        (ns.out / "build.json").write_text(json.dumps(
            {"machine": machine(where), "runs": ns.runs, "results": res}, indent=1,
            sort_keys=True) + "\n")
        (ns.out / "build.md").write_text(build.markdown(res, ns.runs, where))
        print(build.markdown(res, ns.runs, where))
        return 0
    before = scenarios.leftovers(engines)  # containers that were there before us
    started = time.time()
    results: dict[str, Any] = {}
    results["floors"] = scenarios.floors(ns.runs, log)
    results["run_none"] = scenarios.run_rm(engines, ns.runs, "none", log)
    results["run_bridge"] = scenarios.run_rm(engines, ns.runs, "bridge", log)
    results["stop"] = scenarios.stop(engines, ns.runs, log)
    results["exec"] = scenarios.exec_true(engines, ns.runs, log)
    results["parallel"] = scenarios.parallel(engines, ns.parallel, ns.parallel_rounds, log)
    results["cli"] = scenarios.cli(engines, ns.runs, log)
    results["build"] = build.run(engines, min(ns.runs, 10), log)
    results["density"] = [scenarios.density(engines, int(n), log)
                          for n in ns.containers.split(",") if n.strip()]
    results["leftovers"] = {k: v - before.get(k, 0)
                            for k, v in scenarios.leftovers(engines).items()}
    ns.out.mkdir(parents=True, exist_ok=True)
    if ns.profile_runs > 0:
        breakdown = profiling.api_breakdown(a.image, ns.profile_runs, log)
        cli = profiling.cli_overhead(a, min(ns.runs, 20))
        imports = profiling.import_times()
        dpid = daemon_pid()
        spy = (profiling.py_spy(a, dpid, ns.profile_runs, Path(tempfile.gettempdir())
                                / "bench-pyspy.txt", log)
               if dpid else {"error": "no daemon pid"})
        profiling.write_profile(ns.out / "profile.txt", breakdown, cli, imports, spy)
        results["profile"] = {"api_ms": breakdown, "cli_ms": cli,
                              "pyspy_top": spy.get("inclusive", [])[:15]}
    record = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "duration_s": time.time() - started,
        "machine": machine(where),
        "params": {"runs": ns.runs, "containers": ns.containers, "parallel": ns.parallel,
                   "parallel_rounds": ns.parallel_rounds, "profile_runs": ns.profile_runs},
        "engines": {e.name: e.cli for e in engines},
        "results": results,
    }
    (ns.out / "bench.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    md = report.markdown(record)
    (ns.out / "results.md").write_text(md)
    report.chart(record, ns.out / "chart.png")
    print(md)
    log(f"wrote {ns.out}/bench.json, results.md, chart.png"
        + (", profile.txt" if ns.profile_runs > 0 else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ns = parse(args)
    if not ns.inside:
        return outer([a for a in args if a != "--inside"])
    return inside(ns)
