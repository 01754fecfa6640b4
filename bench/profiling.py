"""Where a `run --rm` spends its time: per API call, in the daemon (py-spy), in the CLI.

The API breakdown replays the CLI's calls (create, start, wait for removal) over the
socket and times each.  py-spy samples the daemon (and the zygote and monitors it
forks) during a series of `run --rm`, wall-clock including waits, with the idle event
loop and idle worker threads left out, so the top entries are what a start waits on.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .engines import SOCKET, VENV_BIN, Engine, timed
from .scenarios import Log, percentile

RATE = 500
# Leaf frames of a thread or process waiting for work, not for a container: the event
# loop's select, an idle worker thread, the zygote waiting for its next request.
IDLE_LEAVES = ("(selectors.py:", "_worker (concurrent/futures/thread.py", "(queue.py:",
               "wait (threading.py", "_wait_for_tstate_lock",
               "_serve (sdcontainer/runtime/zygote.py")


class _Unix(http.client.HTTPConnection):
    def __init__(self) -> None:
        super().__init__("localhost", timeout=60)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(SOCKET)
        self.sock = s


def _call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    c = _Unix()
    c.request(method, "/v1.41" + path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def api_breakdown(image: str, runs: int, log: Log) -> dict[str, Any]:
    """Median milliseconds of each API call of a `run --rm --network none IMAGE true`."""
    phases: dict[str, list[float]] = {"create": [], "start": [], "wait_removed": [],
                                      "total": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        status, answer = _call("POST", "/containers/create", {
            "Image": image, "Cmd": ["true"],
            "HostConfig": {"AutoRemove": True, "NetworkMode": "none"}})
        t1 = time.perf_counter()
        if status != 201:
            return {"error": f"create: {status} {answer}"}
        cid = answer["Id"]
        status, answer = _call("POST", f"/containers/{cid}/start")
        t2 = time.perf_counter()
        if status not in (204, 304):
            return {"error": f"start: {status} {answer}"}
        _call("POST", f"/containers/{cid}/wait?condition=removed")
        t3 = time.perf_counter()
        for k, v in (("create", t1 - t0), ("start", t2 - t1), ("wait_removed", t3 - t2),
                     ("total", t3 - t0)):
            phases[k].append(v * 1000)
    out = {k: percentile(v, 50) for k, v in phases.items()}
    log("API breakdown (median ms): " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def cli_overhead(engine: Engine, runs: int) -> dict[str, float]:
    """Median ms of the CLI's bare start-up: `python -c pass`, importing the CLI, `version`."""
    py = str(VENV_BIN / "python")
    out = {}
    for key, argv in (("python_-c_pass", [py, "-c", "pass"]),
                      ("import_cli", [py, "-c", "import sdcontainer.cli.main"]),
                      ("sdcontainer_version", [*engine.cli, "version"])):
        out[key] = percentile([timed(argv).seconds * 1000 for _ in range(runs)], 50)
    return out


def import_times(top: int = 15) -> list[tuple[int, str]]:
    """The CLI's slowest imports (-X importtime, cumulative microseconds)."""
    p = subprocess.run([str(VENV_BIN / "python"), "-X", "importtime", "-c",
                        "import sdcontainer.cli.main"], capture_output=True, text=True)
    rows = []
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def py_spy(engine: Engine, daemon: int, runs: int, raw: Path, log: Log) -> dict[str, Any]:
    """Sample the daemon during RUNS `run --rm`; aggregate the collapsed stacks."""
    exe = VENV_BIN / "py-spy"
    if not exe.exists():
        return {"error": f"{exe} missing (tools/install-deps installs it)"}
    proc = subprocess.Popen([str(exe), "record", "--pid", str(daemon), "--rate", str(RATE),
                             "--format", "raw", "--output", str(raw), "--idle", "--threads",
                             "--subprocesses", "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # py-spy attaches
    t0 = time.perf_counter()
    for _ in range(runs):
        engine.run("--rm", "--network", "none", engine.image, "true")
    wall = time.perf_counter() - t0
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if not raw.exists():
        return {"error": f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}"}
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            stacks.append((stack.split(";"), int(n)))
    busy = [(s, n) for s, n in stacks if not any(i in s[-1] for i in IDLE_LEAVES)]
    total = sum(n for _, n in busy) or 1
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for s, n in busy:
        frames = [f for f in s if not f.startswith(("process ", "thread "))]
        for f in set(frames):
            inclusive[f] += n
        if frames:
            leaf[frames[-1]] += n
    log(f"py-spy: {sum(n for _, n in stacks)} samples, {total} busy, over {runs} runs "
        f"({wall:.1f} s)")
    def per_run(n: int) -> float:
        return n / RATE * 1000 / runs

    return {"runs": runs, "wall_s": wall, "samples": sum(n for _, n in stacks),
            "busy_samples": total,
            "inclusive": [(f, per_run(n), n / total) for f, n in inclusive.most_common(40)],
            "self": [(f, per_run(n), n / total) for f, n in leaf.most_common(25)]}


def write_profile(path: Path, breakdown: dict[str, Any], cli: dict[str, float],
                  imports: list[tuple[int, str]], spy: dict[str, Any]) -> None:
    lines = ["# Where `sdcontainer run --rm --network none IMAGE true` spends its time", ""]
    lines.append("## API calls (what the CLI sends), median ms")
    lines += [f"  {k:14} {v:8.1f}" for k, v in breakdown.items() if isinstance(v, float)]
    if "error" in breakdown:
        lines.append(f"  error: {breakdown['error']}")
    lines += ["", "## CLI process, median ms"]
    lines += [f"  {k:22} {v:8.1f}" for k, v in cli.items()]
    lines += ["", "## CLI imports (-X importtime, cumulative us)"]
    lines += [f"  {us:8} {mod}" for us, mod in imports]
    lines += ["", "## Daemon, zygote and monitors (py-spy, wall clock, idle loop excluded)"]
    if "error" in spy:
        lines.append(f"  error: {spy['error']}")
    else:
        lines.append(f"  {spy['runs']} runs in {spy['wall_s']:.1f} s "
                     f"({spy['wall_s'] * 1000 / spy['runs']:.0f} ms a run); {spy['samples']} "
                     f"samples at {RATE} Hz, {spy['busy_samples']} not idle; threads and "
                     "processes summed, so shares can pass 100% of a run's wall time.")
        lines.append("  Monitors live ~100 ms: py-spy rarely catches them; they are not here.")
        lines += ["", "### Inclusive: ms per run (share of non-idle samples)"]
        lines += [f"  {ms:7.1f} ms ({share * 100:5.1f}%)  {f}" for f, ms, share in spy["inclusive"]]
        lines += ["", "### Self (leaf frames; a C call such as a D-Bus round trip or sleep shows "
                  "as its Python caller)"]
        lines += [f"  {ms:7.1f} ms ({share * 100:5.1f}%)  {f}" for f, ms, share in spy["self"]]
    path.write_text("\n".join(lines) + "\n")

