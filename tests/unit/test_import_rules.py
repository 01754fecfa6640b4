"""The layout's rules, as tests: who may import whom, and no import cycles.

Each group of the package runs in its own kind of process (docs/architecture.md):
- cli/: the client, stdlib only, for a fast start;
- runtime/ and model/: forked, single-threaded processes (zygote, monitor, launcher):
  stdlib only, no threads, no asyncio, no D-Bus;
- systemd/generator.py: run by systemd at boot, stdlib only;
- util/: stdlib helpers for everyone.
Data flows one way: cli -> (api, dbus) -> engine -> (systemd, runtime, network, images).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "sdcontainer"


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    """Every module of the package -> the modules (ours or third parties') it imports,
    at any depth (function-level imports count: they run in the same process)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PKG.rglob("*.py"):
        mod = module_name(path)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        # Imports under `if TYPE_CHECKING:` never run: a type-only edge is no cycle.
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and getattr(node.test, "id", "") == "TYPE_CHECKING"
                     for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                graph[mod] |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    full = f"{target}.{a.name}"
                    as_module = PKG.parent / Path(*full.split("."))
                    graph[mod].add(full if as_module.with_suffix(".py").exists()
                                   or as_module.is_dir() else target)
        graph.setdefault(mod, set())
    return graph


GRAPH = imports()
DAEMON_LIBRARIES = ("pystemd", "dbus_next", "dbus_fast", "pyroute2", "cryptography")
# group -> what it may not import at all.
FORBIDDEN = {
    # The client starts on every command: none of the daemon's libraries.
    "sdcontainer.cli": DAEMON_LIBRARIES,
    "sdcontainer.systemd.generator": (*DAEMON_LIBRARIES, "asyncio", "threading"),
    "sdcontainer.util": (*DAEMON_LIBRARIES, "threading"),
    "sdcontainer.model": (*DAEMON_LIBRARIES, "asyncio", "threading"),
    # Forked from the zygote, single-threaded: no threads, no event loop, no bus; pystemd's
    # journal (sd_journal_send) is the one library a monitor uses.
    "sdcontainer.runtime": ("pystemd.systemd1", "pystemd.dbuslib", "pystemd.run",
                            "dbus_next", "dbus_fast", "pyroute2", "cryptography", "asyncio",
                            "threading", "concurrent"),
}
# Which groups a group may import (besides itself, errors, paths and util).
ALLOWED = {
    "sdcontainer.cli": ("sdcontainer.buildinfo", "sdcontainer.systemd.generator",
                        "sdcontainer.tlscerts"),
    "sdcontainer.runtime": ("sdcontainer.model",),
    "sdcontainer.model": (),
    "sdcontainer.util": (),
    "sdcontainer.systemd": ("sdcontainer.model",),
    "sdcontainer.images": (),
    "sdcontainer.network": (),
    "sdcontainer.engine": ("sdcontainer.systemd", "sdcontainer.runtime", "sdcontainer.model",
                           "sdcontainer.network", "sdcontainer.images"),
    "sdcontainer.api": ("sdcontainer.engine", "sdcontainer.systemd", "sdcontainer.model",
                        "sdcontainer.network", "sdcontainer.images", "sdcontainer.run"),
    "sdcontainer.dbus": ("sdcontainer.engine", "sdcontainer.model", "sdcontainer.images"),
    # The CRI front end translates onto the engine; runtime.syscalls unmounts its pins.
    "sdcontainer.cri": ("sdcontainer.engine", "sdcontainer.model", "sdcontainer.images",
                        "sdcontainer.runtime.syscalls", "sdcontainer.systemd"),
}
EVERYONE = ("sdcontainer", "sdcontainer.errors", "sdcontainer.paths")


def group(mod: str) -> str:
    return next((g for g in sorted(ALLOWED, key=len, reverse=True)
                 if mod == g or mod.startswith(g + ".")), mod)


def ours(mod: str) -> bool:
    return mod == "sdcontainer" or mod.startswith("sdcontainer.")


def test_process_groups_import_only_what_their_process_may() -> None:
    bad = sorted(f"{m} -> {i}" for m, targets in GRAPH.items() for g, banned in FORBIDDEN.items()
                 if m == g or m.startswith(g + ".") for i in targets
                 if (i == "pystemd" and "pystemd" in banned)
                 or any(i == b or i.startswith(b + ".") for b in banned))
    assert not bad, "\n".join(bad)


def test_each_group_imports_only_what_it_may() -> None:
    bad = []
    for mod, targets in GRAPH.items():
        g = group(mod)
        if g not in ALLOWED:
            continue
        for t in filter(ours, targets):
            if group(t) == g or t in EVERYONE or t.startswith("sdcontainer.util"):
                continue
            if not t.startswith(ALLOWED[g]):
                bad.append(f"{mod} -> {t}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles_between_modules() -> None:
    internal = {m: {t for t in ts if t in GRAPH and t != m} for m, ts in GRAPH.items()}
    # A package's __init__ re-exporting its modules is not a cycle of behaviour.
    for m in internal:
        internal[m] = {t for t in internal[m] if not m.startswith(t + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in internal[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in sorted(internal):
        if v not in index:
            visit(v)
    assert not cycles, cycles
