"""The two engines under test, driven through their command lines, and what we read of them.

Both get the same verbs (run, stop, rm, inspect) so that every scenario runs the same
code for each; only how a container's processes and cgroups are found differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(os.environ.get("SDCONTAINER_BIN", REPO / ".venv" / "bin"))
SOCKET = "/run/sdcontainer/sdcontainer.sock"
PODMAN_DIR = Path("/run/sdcontainer-bench/podman")
IMAGE = "bench-busybox"


@dataclass
class Result:
    """One command's outcome and wall time."""

    seconds: float
    rc: int
    stderr: str


def timed(argv: list[str], timeout: float = 120, env: dict[str, str] | None = None) -> Result:
    """Run ARGV, output discarded (stderr kept for errors); its wall time."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Result(time.perf_counter() - t0, -1, f"timed out after {timeout}s")
    return Result(time.perf_counter() - t0, p.returncode,
                  p.stderr.decode(errors="replace").strip())


def output(argv: list[str], timeout: float = 120) -> str:
    """ARGV's stdout; raises with its stderr when it fails."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


@dataclass
class Engine:
    """An engine's command line and the image it runs."""

    name: str
    cli: list[str]
    image: str
    rm_flags: list[str] = field(default_factory=lambda: ["-f"])

    def run_argv(self, *args: str) -> list[str]:
        return [*self.cli, "run", *args]

    def run(self, *args: str, timeout: float = 120) -> Result:
        return timed(self.run_argv(*args), timeout)

    def stop(self, name: str, seconds: int = 10) -> Result:
        return timed([*self.cli, "stop", "-t", str(seconds), name], seconds + 30)

    def remove(self, names: list[str]) -> Result:
        """Force-remove NAMES, in batches (one command line stays short)."""
        total = Result(0.0, 0, "")
        for i in range(0, len(names), 100):
            r = timed([*self.cli, "rm", *self.rm_flags, *names[i:i + 100]], 600)
            total = Result(total.seconds + r.seconds, total.rc or r.rc, total.stderr or r.stderr)
        return total

    def workload_pid(self, name: str) -> int:
        return int(output([*self.cli, "inspect", "--format", "{{.State.Pid}}", name]).strip())

    def running(self, name: str) -> bool:
        r = subprocess.run([*self.cli, "inspect", "--format", "{{.State.Running}}", name],
                           capture_output=True, text=True)
        return r.returncode == 0 and r.stdout.strip() == "true"


def sdcontainer() -> Engine:
    return Engine("sdcontainer", [str(VENV_BIN / "sdcontainer")], IMAGE)


def podman() -> Engine:
    """podman with runc (crun refuses hybrid cgroups), systemd cgroups, storage on tmpfs."""
    cli = ["podman", "--root", str(PODMAN_DIR / "root"), "--runroot", str(PODMAN_DIR / "run"),
           "--runtime", "runc", "--cgroup-manager", "systemd"]
    return Engine("podman", cli, f"localhost/{IMAGE}:latest", rm_flags=["-f", "-t", "0"])


# -- what a container costs ---------------------------------------------------------


def smaps(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def private_kib(pid: int) -> int:
    s = smaps(pid)
    return s.get("Private_Clean", 0) + s.get("Private_Dirty", 0)


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise RuntimeError(f"no PPid for {pid}")


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def memory_cgroup(pid: int) -> Path | None:
    """The directory of PID's memory cgroup (v1 memory hierarchy, else unified)."""
    v1 = v2 = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                v1 = Path("/sys/fs/cgroup/memory" + path)
            elif controllers == "":
                v2 = path
    if v1 is not None:
        return v1
    if v2 is not None and Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return Path("/sys/fs/cgroup" + v2)
    return None


def cgroup_usage_kib(cg: Path) -> int:
    for f in ("memory.usage_in_bytes", "memory.current"):
        if (cg / f).exists():
            return int((cg / f).read_text()) // 1024
    raise RuntimeError(f"no memory usage file in {cg}")


def mem_available_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def container_cost(engine: Engine, name: str) -> dict[str, object]:
    """What container NAME costs beyond its workload: the supervisor (our monitor, podman's
    conmon: the workload's parent in both) and the cgroups that hold them."""
    wl = engine.workload_pid(name)
    sup = parent(wl)
    wl_private = private_kib(wl)
    sup_smaps = smaps(sup)
    cgroups = {memory_cgroup(wl), memory_cgroup(sup)}
    cgroups.discard(None)
    usable = [cg for cg in cgroups if cg is not None and cg.name.endswith(".scope")]
    cg_total = sum(cgroup_usage_kib(cg) for cg in usable)
    return {
        "supervisor": comm(sup),
        "supervisor_private_kib": sup_smaps.get("Private_Clean", 0)
        + sup_smaps.get("Private_Dirty", 0),
        "supervisor_pss_kib": sup_smaps.get("Pss", 0),
        "workload_private_kib": wl_private,
        "cgroups": sorted(str(cg) for cg in usable),
        "cgroup_usage_kib": cg_total,
        "cgroup_overhead_kib": cg_total - wl_private,
    }


def daemon_pid() -> int | None:
    r = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", "sdcontainerd.service"],
                       capture_output=True, text=True)
    pid = int(r.stdout.strip() or 0)
    return pid or None


def wait_running(engine: Engine, name: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.running(name):
            return True
        time.sleep(0.05)
    return False


def dump(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
