"""Image builds: the same 10-step Dockerfile and context for both engines, built cold
(no cache) and fully cached, interleaved A/B.

sdcontainer's `build` (the classic builder's steps, each RUN a container) against
`podman build` (buildah), both FROM the busybox image the bench imported into each.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from .engines import Engine, Result, timed
from .scenarios import Log, interleaved

# FROM and nine steps: metadata, a COPY of a small tree, four RUNs.
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ENV APP=/app MODE=bench
WORKDIR /app
COPY tree/ ./tree/
RUN ls -R tree > listing && wc -l listing
RUN echo one > one && cat one
RUN mkdir -p data && cp -r tree data/
LABEL org.example.bench=build
RUN rm -rf data/tree/d0 && du -s data
USER nobody
"""
TAG = "bench-build:latest"


def context(root: Path) -> Path:
    """The Dockerfile and a small tree: 4 directories of 8 files of 1-8 KiB."""
    for d in range(4):
        sub = root / "tree" / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(8):
            (sub / f"f{f}.txt").write_text(f"{d}-{f}\n" * (128 * (f + 1)))
    (root / "Dockerfile").write_text(DOCKERFILE)
    return root


def argv(e: Engine, ctx: Path, *flags: str) -> list[str]:
    """E's build of CTX, FROM the image the bench imported into it."""
    extra = ["--pull=never"] if e.name == "podman" else []
    return [*e.cli, "build", *extra, *flags, "--build-arg", f"BASE={e.image}", "-t", TAG,
            str(ctx)]


def run(engines: list[Engine], runs: int, log: Log) -> dict[str, Any]:
    """Cold (--no-cache) and fully cached builds, RUNS each per engine, interleaved."""
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    out: dict[str, Any] = {"steps": 10}
    try:
        ctx = context(work / "ctx")
        ready = []
        for e in engines:
            first = timed(argv(e, ctx), timeout=600)  # warms the cache for the cached runs
            if first.rc != 0:
                out[e.name] = {"available": False, "error": first.stderr[-500:]}
                log(f"build: {e.name} not available: {first.stderr[-300:]}")
            else:
                ready.append(e)

        def cold(e: Engine, _: int) -> Result:
            return timed(argv(e, ctx, "--no-cache"), timeout=600)

        def cached(e: Engine, _: int) -> Result:
            return timed(argv(e, ctx), timeout=600)

        if ready:
            out["cold"] = interleaved(ready, runs, cold, log, "build, no cache")
            # A cold build last replaced the tag: one more warms it again for both.
            for e in ready:
                timed(argv(e, ctx), timeout=600)
            out["cached"] = interleaved(ready, runs, cached, log, "build, fully cached")
        for e in ready:
            timed([*e.cli, "rmi", TAG])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def markdown(res: dict[str, Any], runs: int, where: str) -> str:
    """The figures as a table with the ratio sdcontainer/podman."""
    lines = [f"# Builds: sdcontainer build vs podman build ({where})", "",
             f"The {res['steps']}-step Dockerfile of bench/build.py (COPY of a 32-file tree, "
             f"four RUNs, ENV/WORKDIR/LABEL/USER), {runs} runs each, interleaved.", "",
             "| build | sdcontainer median | podman median | ratio |", "| --- | --- | --- | --- |"]
    for key, label in (("cold", "no cache (--no-cache)"), ("cached", "fully cached")):
        a = res.get(key, {}).get("sdcontainer", {}).get("median")
        b = res.get(key, {}).get("podman", {}).get("median")
        ratio = f"{a / b:.2f}" if a and b else "n/a"
        lines.append(f"| {label} | {a * 1000:.0f} ms | {b * 1000:.0f} ms | {ratio} |"
                     if a and b else f"| {label} | {a} | {b} | n/a |")
    return "\n".join(lines) + "\n"
