"""`python3 -m bench --memory`: what a running container's supervisor costs (issue 17).

The density scenario three times per size: sdcontainer with the native supervisor
(native/sdc-monitor.c, the default), sdcontainer with the whole monitor in Python
(SDCONTAINER_MONITOR=python in the daemon's environment: the figures before issue 17),
and podman (conmon).  Results in OUT/memory.json and OUT/memory.md.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import scenarios
from .engines import SOCKET, VENV_BIN, Engine

Log = Callable[[str], None]
COLUMNS = (("sdcontainer", "sdcontainer, native supervisor"),
           ("sdcontainer-python", "sdcontainer, Python monitor (before)"),
           ("podman", "podman (conmon)"))
ROWS = (("supervisor_private_kib", "supervisor private memory (Private_Clean+Dirty), median",
         "KiB", 1.0),
        ("supervisor_pss_kib", "supervisor PSS, median", "KiB", 1.0),
        ("system_kib_per_container", "MemAvailable drop per container", "KiB", 1.0),
        ("cgroup_overhead_kib", "cgroup memory beyond the workload, median", "KiB", 1.0),
        ("start_per_container_s", "start, per container (sequential `run -d`)", "ms", 1000.0))


def set_monitor(mode: str) -> None:
    """Restart our daemon with SDCONTAINER_MONITOR=MODE ("" for the default)."""
    if mode:
        subprocess.run(["systemctl", "set-environment", f"SDCONTAINER_MONITOR={mode}"],
                       check=True)
    else:
        subprocess.run(["systemctl", "unset-environment", "SDCONTAINER_MONITOR"], check=True)
    subprocess.run(["systemctl", "restart", "sdcontainerd.service"], check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(SOCKET) and subprocess.run(
                [str(VENV_BIN / "sdcontainer"), "ps"], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)


def measure(ours: Engine, podman: Engine, sizes: list[int], log: Log,
            python_monitor: bool = True) -> list[dict[str, Any]]:
    """The density scenario at each of SIZES for the three supervisors (two without
    PYTHON_MONITOR)."""
    python = dataclasses.replace(ours, name="sdcontainer-python")
    out = []
    for n in sizes:
        before: dict[str, Any] = {}
        if python_monitor:
            set_monitor("python")
            before = scenarios.density([python], n, log)
        set_monitor("")
        now = scenarios.density([ours, podman], n, log)
        now.update({k: v for k, v in before.items() if k != "count"})
        out.append(now)
    return out


def start_ab(ours: Engine, rounds: int, per_round: int, log: Log) -> dict[str, Any]:
    """`run -d` latency, native supervisor against the Python monitor, in alternating
    blocks (the mode needs a daemon restart): the sequential density figures above
    drift with the machine's load."""
    samples: dict[str, list[float]] = {"sdcontainer": [], "sdcontainer-python": []}
    for r in range(rounds):
        for mode in ("python", "") if r % 2 == 0 else ("", "python"):
            set_monitor(mode)
            key = "sdcontainer-python" if mode else "sdcontainer"
            names = [f"bench-ab-{r}-{key}-{i}" for i in range(per_round)]
            for n in names:
                res = ours.run("-d", "--network", "none", "--name", n, ours.image,
                               "sleep", "1000000")
                if res.rc == 0:
                    samples[key].append(res.seconds)
            ours.remove(names)
    set_monitor("")
    out = {k: scenarios.stats(v, []) for k, v in samples.items()}
    log("run -d A/B: " + ", ".join(f"{k} median {v.get('median', 0) * 1000:.0f} ms"
                                   for k, v in out.items()))
    return out


def markdown(record: dict[str, Any]) -> str:
    """The table of record's results."""
    lines = [f"Measured {record['date']} ({record['where']}): `python3 -m bench --memory "
             f"--containers {record['containers']}`; `sleep` containers started one after "
             "another, 20 sampled per size.", ""]
    for d in record["results"]:
        if "skipped" in d:
            lines.append(f"{d['count']} containers: skipped ({d['skipped']})")
            continue
        lines += [f"### {d['count']} containers", "",
                  "| measurement | unit | " + " | ".join(t for _, t in COLUMNS)
                  + " | native/podman |",
                  "| --- | --- |" + " ---: |" * (len(COLUMNS) + 1)]
        for key, title, unit, scale in ROWS:
            cells, values = [], {}
            for engine, _ in COLUMNS:
                v = d.get(engine, {}).get(key)
                values[engine] = v
                cells.append("-" if v is None else f"{v * scale:.0f}")
            ratio = (f"{values['sdcontainer'] / values['podman']:.2f}"
                     if values.get("sdcontainer") is not None and values.get("podman") else "-")
            lines.append(f"| {title} | {unit} | " + " | ".join(cells) + f" | {ratio} |")
        failures = {e: d.get(e, {}).get("failures") for e, _ in COLUMNS}
        lines += ["", f"failures: {failures}", ""]
    ab = record.get("start_ab")
    if ab:
        med = {k: v.get("median", 0) * 1000 for k, v in ab.items()}
        lines += ["`run -d --network none` latency, the two monitors in alternating blocks "
                  f"({ab['sdcontainer']['n']} runs each): median native "
                  f"{med['sdcontainer']:.0f} ms, Python monitor "
                  f"{med['sdcontainer-python']:.0f} ms.", ""]
    return "\n".join(lines) + "\n"


def run(ours: Engine, podman: Engine, sizes: list[int], out: Path, where: str,
        log: Log, python_monitor: bool = True) -> int:
    """Measure, write OUT/memory.json and OUT/memory.md, print the table."""
    record = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "where": where, "containers": ",".join(map(str, sizes)),
              "results": measure(ours, podman, sizes, log, python_monitor),
              "start_ab": start_ab(ours, 4, 10, log) if python_monitor else {}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    md = markdown(record)
    (out / "memory.md").write_text(md)
    print(md)
    log(f"wrote {out}/memory.json, memory.md")
    return 0
