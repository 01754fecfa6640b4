"""The measurements, each the same for both engines, interleaved A/B where they repeat.

Every function returns a plain dict for the JSON record: per engine, the figures and
the failures (with the first error), or `available: False` and why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from .engines import (
    SOCKET,
    Engine,
    Result,
    container_cost,
    daemon_pid,
    mem_available_kib,
    private_kib,
    timed,
    wait_running,
)

TRAP = 'trap "exit 0" TERM; while :; do sleep 0.1; done'
Log = Callable[[str], None]


def percentile(xs: list[float], p: float) -> float:
    """The P-th percentile, linearly interpolated."""
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def stats(samples: list[float], errors: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(samples), "failures": len(errors)}
    if errors:
        out["first_error"] = errors[0][-500:]
    if samples:
        out.update(median=percentile(samples, 50), p90=percentile(samples, 90),
                   min=min(samples), max=max(samples), samples=[round(x, 5) for x in samples])
    return out


def interleaved(engines: list[Engine], runs: int, once: Callable[[Engine, int], Result],
                log: Log, label: str) -> dict[str, Any]:
    """ONCE(engine, i) for i in range(RUNS), alternating which engine goes first."""
    samples: dict[str, list[float]] = {e.name: [] for e in engines}
    errors: dict[str, list[str]] = {e.name: [] for e in engines}
    for i in range(runs):
        for e in engines if i % 2 == 0 else engines[::-1]:
            r = once(e, i)
            if r.rc == 0:
                samples[e.name].append(r.seconds)
            else:
                errors[e.name].append(r.stderr or f"exit {r.rc}")
    out = {e.name: stats(samples[e.name], errors[e.name]) for e in engines}
    log(f"{label}: " + ", ".join(
        f"{n} median {s.get('median', float('nan')) * 1000:.0f} ms ({s['failures']} failed)"
        for n, s in out.items()))
    return out


def probe(e: Engine, *args: str) -> Result:
    return e.run("--rm", *args, e.image, "true")


# -- 1, 2: run --rm ---------------------------------------------------------------


def run_rm(engines: list[Engine], runs: int, network: str, log: Log) -> dict[str, Any]:
    """`run --rm --network NETWORK IMAGE true`, RUNS times each, interleaved."""
    ready: list[Engine] = []
    out: dict[str, Any] = {}
    for e in engines:
        first = probe(e, "--network", network)
        if first.rc != 0:
            out[e.name] = {"available": False, "error": first.stderr[-500:]}
            log(f"run --network {network}: {e.name} not available: {first.stderr[-200:]}")
        else:
            probe(e, "--network", network)  # a second warm-up
            ready.append(e)
    if ready:
        out.update(interleaved(ready, runs, lambda e, _: probe(e, "--network", network),
                               log, f"run --rm --network {network}"))
    return out


# -- 3: stop ------------------------------------------------------------------------


def stop(engines: list[Engine], runs: int, log: Log) -> dict[str, Any]:
    """`stop` of a container whose workload exits on SIGTERM."""
    def once(e: Engine, i: int) -> Result:
        name = f"bench-stop-{e.name}-{i}"
        r = e.run("-d", "--network", "none", "--name", name, e.image, "sh", "-c", TRAP)
        if r.rc != 0:
            return r
        try:
            if not wait_running(e, name):
                return Result(0, 1, "container did not start running")
            time.sleep(0.2)  # let sh set its trap
            return e.stop(name)
        finally:
            e.remove([name])

    return interleaved(engines, runs, once, log, "stop")


# -- 3b: exec --------------------------------------------------------------------------


def exec_true(engines: list[Engine], runs: int, log: Log) -> dict[str, Any]:
    """`exec NAME true` in a running container (issue 14's exec target)."""
    names = {e.name: f"bench-exec-{e.name}" for e in engines}
    ready: list[Engine] = []
    out: dict[str, Any] = {}
    for e in engines:
        r = e.run("-d", "--network", "none", "--name", names[e.name], e.image, "sleep", "3600")
        if r.rc != 0 or not wait_running(e, names[e.name]):
            out[e.name] = {"available": False, "error": r.stderr[-500:]}
            continue
        timed([*e.cli, "exec", names[e.name], "true"])  # a warm-up
        ready.append(e)
    try:
        out.update(interleaved(ready, runs, lambda e, _: timed(
            [*e.cli, "exec", names[e.name], "true"]), log, "exec"))
    finally:
        for e in engines:
            e.remove([names[e.name]])
    return out


# -- 4: density -----------------------------------------------------------------------


def density(engines: list[Engine], count: int, log: Log, sample: int = 20) -> dict[str, Any]:
    """COUNT `sleep` containers, one engine at a time: time to start them all, and what
    each costs beyond its workload."""
    out: dict[str, Any] = {"count": count}
    # Measured costs are 0.3-3.5 MiB a container (workload, supervisor, kernel): 8 MiB
    # each, plus 2 GiB, leaves room without refusing 1000 on a 24 GiB machine.
    need = count * 8 * 1024 + 2 * 1024 * 1024
    if mem_available_kib() < need:
        out["skipped"] = f"needs {need // 1024} MiB available, has {mem_available_kib() // 1024}"
        log(f"density {count}: skipped: {out['skipped']}")
        return out
    for e in engines:
        names = [f"bench-d{count}-{e.name}-{i}" for i in range(count)]
        dpid = daemon_pid() if e.name == "sdcontainer" else None
        daemon_before = private_kib(dpid) if dpid else None
        before = mem_available_kib()
        errors: list[str] = []
        started: list[str] = []
        t0 = time.perf_counter()
        for n in names:
            r = e.run("-d", "--network", "none", "--name", n, e.image, "sleep", "1000000")
            if r.rc == 0:
                started.append(n)
            else:
                errors.append(r.stderr or f"exit {r.rc}")
        total = time.perf_counter() - t0
        time.sleep(2)
        after = mem_available_kib()
        costs = []
        for n in started[:: max(1, len(started) // sample)][:sample]:
            try:
                costs.append(container_cost(e, n))
            except (OSError, RuntimeError, ValueError) as err:
                errors.append(f"measuring {n}: {err}")
        running = sum(1 for n in started[:: max(1, len(started) // sample)] if e.running(n))
        daemon_after = private_kib(dpid) if dpid else None
        rm = e.remove(started)
        res: dict[str, Any] = {
            "started": len(started), "failures": len(errors), "start_total_s": total,
            "start_per_container_s": total / max(1, len(started)),
            "remove_total_s": rm.seconds, "remove_rc": rm.rc,
            "still_running_in_sample": running,
            "system_kib_per_container": (before - after) / max(1, len(started)),
            "sampled": costs,
        }
        if errors:
            res["first_error"] = errors[0][-500:]
        if costs:
            for key in ("supervisor_private_kib", "supervisor_pss_kib", "cgroup_overhead_kib",
                        "workload_private_kib"):
                res[key] = percentile([float(c[key]) for c in costs], 50)
            res["supervisor"] = costs[0]["supervisor"]
        if daemon_before is not None and daemon_after is not None:
            res["daemon_private_growth_kib_per_container"] = (
                (daemon_after - daemon_before) / max(1, len(started)))
        out[e.name] = res
        log(f"density {count}: {e.name}: {len(started)} started in {total:.1f} s, "
            f"{len(errors)} failures, supervisor private "
            f"{res.get('supervisor_private_kib', float('nan')):.0f} KiB")
    return out


# -- 5: parallel runs ----------------------------------------------------------------


def parallel(engines: list[Engine], width: int, rounds: int, log: Log) -> dict[str, Any]:
    """WIDTH `run --rm --network none IMAGE true` at once: wall time, throughput."""
    walls: dict[str, list[float]] = {e.name: [] for e in engines}
    errors: dict[str, list[str]] = {e.name: [] for e in engines}
    for i in range(rounds):
        for e in engines if i % 2 == 0 else engines[::-1]:
            results: list[Result] = []
            lock = threading.Lock()

            def one(e: Engine = e, results: list[Result] = results,
                    lock: threading.Lock = lock) -> None:
                r = probe(e, "--network", "none")
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=one) for _ in range(width)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            walls[e.name].append(time.perf_counter() - t0)
            errors[e.name] += [r.stderr or f"exit {r.rc}" for r in results if r.rc != 0]
    out: dict[str, Any] = {"width": width, "rounds": rounds}
    for e in engines:
        s = stats(walls[e.name], errors[e.name])
        s["runs_per_second"] = width / s["median"] if walls[e.name] else None
        out[e.name] = s
    log(f"parallel {width}: " + ", ".join(
        f"{e.name} {out[e.name]['runs_per_second'] or 0:.1f} runs/s "
        f"({out[e.name]['failures']} failed)" for e in engines))
    return out


# -- 6: CLI start-up, docker ps, floors ------------------------------------------------


def cli(engines: list[Engine], runs: int, log: Log) -> dict[str, Any]:
    """`version` and `ps` per engine, and `docker ps` through our API if docker is here."""
    out: dict[str, Any] = {}
    out["version"] = interleaved(engines, runs, lambda e, _: timed([*e.cli, "version"]),
                                 log, "version")
    out["ps"] = interleaved(engines, runs, lambda e, _: timed([*e.cli, "ps"]), log, "ps")
    docker = shutil.which("docker") or ("/usr/local/bin/docker"
                                        if os.path.exists("/usr/local/bin/docker") else None)
    if docker is None:
        out["docker_ps"] = {"available": False, "error": "no docker CLI installed"}
        log("docker ps: skipped: no docker CLI")
        return out
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"}
    samples, errors = [], []
    for _ in range(runs):
        r = timed([docker, "ps"], env=env)
        (samples if r.rc == 0 else errors).append(r.seconds if r.rc == 0 else r.stderr)
    out["docker_ps"] = stats([float(s) for s in samples], [str(x) for x in errors])
    out["docker_ps"]["cli"] = docker
    log(f"docker ps through our API: median "
        f"{out['docker_ps'].get('median', float('nan')) * 1000:.0f} ms")
    return out


def floors(runs: int, log: Log) -> dict[str, Any]:
    """What a container start cannot beat here: a bare scope, bare namespaces."""
    out: dict[str, Any] = {}
    for key, argv in (
        ("systemd_run_scope", ["systemd-run", "--scope", "--quiet", "true"]),
        ("unshare", ["unshare", "-fpmiu", "--mount-proc", "true"]),
    ):
        samples, errors = [], []
        for _ in range(runs):
            r = timed(argv)
            if r.rc == 0:
                samples.append(r.seconds)
            else:
                errors.append(r.stderr)
        out[key] = stats(samples, errors)
        out[key]["argv"] = argv
    log("floors: " + ", ".join(
        f"{k} {v.get('median', float('nan')) * 1000:.1f} ms" for k, v in out.items()))
    return out


def leftovers(engines: list[Engine]) -> dict[str, int]:
    """Containers still listed after the bench (should be none)."""
    counts = {}
    for e in engines:
        p = subprocess.run([*e.cli, "ps", "-aq"], capture_output=True, text=True)
        counts[e.name] = len(p.stdout.split())
    return counts
