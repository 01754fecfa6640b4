"""The record, read back as a markdown table of ratios sdcontainer/podman and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

A, B = "sdcontainer", "podman"


def _get(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: label, unit, both values, the ratio, the target (max ratio)."""
    r = record["results"]
    out: list[dict[str, Any]] = []

    def add(label: str, unit: str, a: Any, b: Any, target: float | None = None,
            note: str = "", higher_better: bool = False) -> None:
        out.append({"label": label, "unit": unit, "a": a, "b": b, "target": target,
                    "note": note, "higher_better": higher_better})

    def ms(*keys: str) -> tuple[Any, Any]:
        vals = []
        for eng in (A, B):
            sec = _get(r, *keys[:-1], eng, keys[-1])
            if sec is None and _get(r, *keys[:-1], eng, "available") is False:
                vals.append("not available")
            else:
                vals.append(None if sec is None else sec * 1000)
        return vals[0], vals[1]

    add("run --rm --network none, median", "ms", *ms("run_none", "median"), target=0.25)
    add("run --rm --network none, p90", "ms", *ms("run_none", "p90"))
    add("run --rm --network bridge, median", "ms", *ms("run_bridge", "median"), target=0.20)
    add("run --rm --network bridge, p90", "ms", *ms("run_bridge", "p90"))
    add("stop (workload exits on SIGTERM), median", "ms", *ms("stop", "median"))
    add("exec CONTAINER true, median", "ms", *ms("exec", "median"), target=0.25)
    for d in r.get("density", []):
        n = d["count"]
        if "skipped" in d:
            add(f"start {n} sleep containers", "", "skipped", "skipped", note=d["skipped"])
            continue
        add(f"start {n} sleep containers, total", "s", _get(d, A, "start_total_s"),
            _get(d, B, "start_total_s"))
        fails = _get(d, A, "failures")
        add(f"start {n}: failures", "", fails, _get(d, B, "failures"),
            note="target 0: met" if fails == 0 else "target 0: MISSED")
        add(f"start {n}: supervisor private memory (monitor / conmon)", "KiB",
            _get(d, A, "supervisor_private_kib"), _get(d, B, "supervisor_private_kib"),
            target=1.0)
        add(f"start {n}: cgroup memory beyond the workload", "KiB",
            _get(d, A, "cgroup_overhead_kib"), _get(d, B, "cgroup_overhead_kib"))
        add(f"start {n}: MemAvailable drop per container", "KiB",
            _get(d, A, "system_kib_per_container"), _get(d, B, "system_kib_per_container"))
    for key, label in (("cold", "no cache"), ("cached", "fully cached")):
        add(f"build, 10 steps, {label}, median", "ms", *ms("build", key, "median"))
    par = r.get("parallel", {})
    add(f"{par.get('width', 20)} parallel run --rm: throughput", "runs/s",
        _get(par, A, "runs_per_second"), _get(par, B, "runs_per_second"), higher_better=True)
    add("CLI start-up: version, median", "ms", *ms("cli", "version", "median"),
        note="in a git checkout our `version` also runs git twice (buildinfo)")
    add("ps, median", "ms", *ms("cli", "ps", "median"))
    dps = _get(r, "cli", "docker_ps")
    if dps and dps.get("available") is False:
        add("docker ps through our API (vs podman ps)", "ms", "skipped", None, note=dps["error"])
    elif dps:
        add("docker ps through our API (vs podman ps), median", "ms",
            dps.get("median", 0) * 1000, ms("cli", "ps", "median")[1])
    return out


def ratio(row: dict[str, Any]) -> float | None:
    a, b = row["a"], row["b"]
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def verdict(row: dict[str, Any]) -> str:
    q = ratio(row)
    t = row["target"]
    if t is None:
        return row["note"]
    if q is None:
        return f"target ≤ {t:g}: not measured"
    if q <= t:
        return f"target ≤ {t:g}: met"
    return f"target ≤ {t:g}: MISSED by {q / t:.2f}x ({q:.2f} vs {t:g})"


def fmt(v: Any, unit: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if unit == "s":
        return f"{v:.2f}"
    if unit == "runs/s":
        return f"{v:.1f}"
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"


def markdown(record: dict[str, Any]) -> str:
    m = record["machine"]
    lines = [
        f"Measured {record['date']} on {m['description']} ({m['cpus']} CPUs, "
        f"{m['mem_gib']:.0f} GiB, kernel {m['kernel']}, {m['where']}); "
        f"{record['params']['runs']} runs per latency figure, interleaved A/B; "
        f"podman {m['podman']} with runc, systemd cgroups, storage on tmpfs.",
        "",
        "| measurement | unit | sdcontainer | podman | sdcontainer/podman | target |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows(record):
        q = ratio(row)
        lines.append(f"| {row['label']} | {row['unit']} | {fmt(row['a'], row['unit'])} | "
                     f"{fmt(row['b'], row['unit'])} | {'-' if q is None else f'{q:.2f}'} | "
                     f"{verdict(row)} |")
    fl = record["results"].get("floors", {})
    if fl:
        lines += ["", "Floors on this machine (median): " + "; ".join(
            f"`{' '.join(v['argv'])}` {v.get('median', 0) * 1000:.1f} ms" for v in fl.values())
            + "."]
    return "\n".join(lines) + "\n"


def chart(record: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = [row for row in rows(record) if ratio(row) is not None
          and not row["label"].endswith("failures")]
    labels = [row["label"] for row in rs][::-1]
    ratios = [ratio(row) or 0.0 for row in rs][::-1]
    colors = []
    for row in rs[::-1]:
        t = row["target"]
        q = ratio(row) or 0.0
        colors.append("#888888" if t is None else ("#2a9d4b" if q <= t else "#d1495b"))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rs) + 1.6))
    ax.barh(labels, ratios, color=colors)
    ax.axvline(1.0, color="black", linewidth=0.8)
    for i, row in enumerate(rs[::-1]):
        if row["target"] is not None:
            ax.plot([row["target"]] * 2, [i - 0.4, i + 0.4], color="black", linestyle="--")
        ax.text(ratios[i], i, f" {ratios[i]:.2f}", va="center", fontsize=8)
    ax.set_xlabel("sdcontainer / podman: lower is better, except throughput\n"
                  "dashed: target (green met, red missed)")
    ax.set_title(f"sdcontainer vs podman, {record['date']}, {record['machine']['where']}")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
