"""Output shapes: docker's tables, --format templates and JSON."""

from __future__ import annotations

import datetime
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SdcError
from ..util import humanize


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded as docker's tabwriter pads them (three spaces apart)."""
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=False)]
    lines = []
    for r in [list(headers), *rows]:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def ago(unix: float) -> str:
    """'5 seconds ago', 'About a minute ago'."""
    return f"{humanize.duration(time.time() - unix)} ago"


def human_size(n: int) -> str:
    """docker's decimal sizes: 1.2MB, 512kB."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return f"{n}B"


def lookup(obj: Any, path: str) -> Any:
    """obj.A.B for a template field path '.A.B'."""
    for part in [p for p in path.split(".") if p]:
        if isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def render(template: str, obj: Any) -> str:
    """The subset of Go templates people use: {{.A.B}}, {{json .A}}, {{.A}}\\t{{.B}}."""
    if template == "json":
        return json.dumps(obj)

    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(lookup(obj, expr[5:].strip()))
        value = lookup(obj, expr)
        if value is None:
            return "<no value>"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(str(v) for v in value) + "]"
        if isinstance(value, dict):
            return "map[" + " ".join(f"{k}:{v}" for k, v in value.items()) + "]"
        return str(value)

    text = re.sub(r"\{\{(.*?)\}\}", one, template)
    return text.replace("\\t", "\t").replace("\\n", "\n")


def ps_row(c: dict[str, Any], no_trunc: bool) -> dict[str, str]:
    """The fields of `ps --format`, as docker names them."""
    command = c.get("Command", "")
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    created = datetime.datetime.fromtimestamp(c.get("Created", 0)).astimezone()
    return {
        "ID": c["Id"] if no_trunc else c["Id"][:12], "Image": c.get("Image", ""),
        "Command": json.dumps(command, ensure_ascii=False), "CreatedAt":
        created.strftime("%Y-%m-%d %H:%M:%S %z %Z"), "RunningFor": ago(c.get("Created", 0)),
        "Ports": ", ".join(f"{p.get('IP', '0.0.0.0')}:{p['PublicPort']}->{p['PrivatePort']}/"
                           f"{p.get('Type', 'tcp')}" for p in c.get("Ports") or []),
        "State": c.get("State", ""), "Status": c.get("Status", ""),
        "Names": ",".join(n.lstrip("/") for n in c.get("Names", [])),
        "Labels": ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items()),
        "Mounts": ",".join(m.get("Destination", "") for m in c.get("Mounts") or []),
        "Networks": c.get("HostConfig", {}).get("NetworkMode", ""), "Size": "0B",
        "LocalVolumes": "0",
    }


def quote_command(argv: list[str]) -> str:
    """Shell-quoted command line."""
    return shlex.join(argv)


def each(names: list[str], action: Callable[[str], Any], echo: bool = True) -> int:
    """Apply ACTION to every name, printing it as docker does; report a failure one line
    each, go on with the rest; 1 if any failed."""
    rc = 0
    for n in names:
        try:
            action(n)
            if echo:
                print(n)
        except SdcError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            rc = 1
    return rc


def print_inspected(results: list[Any], template: str | None) -> None:
    """inspect's output: each result through --format, or all as one indented JSON array."""
    if template:
        for r in results:
            print(render(template, r))
    else:
        print(json.dumps(results, indent=4))
