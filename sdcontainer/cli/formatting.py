"""Output shapes: docker's tables, --format templates and JSON."""

from __future__ import annotations

import json
import sys
import time

from ..errors import SdcError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


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
    from ..util import humanize

    return f"{humanize.duration(time.time() - unix)} ago"


def human_size(n: float, precision: int = 3, *, binary: bool = False) -> str:
    """docker's sizes (go-units' HumanSizeWithPrecision, or with BINARY its BytesSize):
    1.2MB, 512kB, 1.5MiB.  docker lists images with 3 significant digits and says 4 in
    most other places (`system df`, `stats`' memory)."""
    base = 1024 if binary else 1000
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB") if binary else \
        ("B", "kB", "MB", "GB", "TB", "PB")
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def lookup(obj: Any, path: str) -> Any:
    """obj.A.B for a template field path '.A.B'."""
    for part in [p for p in path.split(".") if p]:
        if isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def template(text: str) -> Any:
    """TEXT parsed as a Go template, or a one-line usage error."""
    from . import gotemplate

    try:
        return gotemplate.Template(text)
    except gotemplate.TemplateError as e:
        raise SdcError(f"template parsing error: {e}") from None


def execute(tmpl: Any, obj: Any, funcs: Any = None) -> str:
    """Run a parsed template; a failure is a one-line error."""
    from . import gotemplate

    try:
        out: str = tmpl.execute(obj, funcs)
        return out
    except gotemplate.TemplateError as e:
        raise SdcError(f"template: {e}") from None


def render(text: str, obj: Any) -> str:
    """OBJ through a --format of a listing: "json", or a Go template (\\t, \\n expanded)."""
    if text == "json":
        from .gotemplate import to_json

        return to_json(obj)
    return execute(template(text.replace("\\t", "\t").replace("\\n", "\n")), obj)


def listing(fmt: str | None, rows: Sequence[Any], headers: dict[str, str],
            default: str) -> str:
    """ROWS as docker's formatter prints a listing: DEFAULT when no --format is given,
    a `table ...` with its header row aligned by tabwriter, "json", or a template per row."""
    from . import gotemplate

    text = fmt or default
    if text == "json":  # docker marshals a row as a map: keys sorted
        return "".join(gotemplate.to_json(dict(sorted(r.items()))) + "\n" for r in rows)
    is_table = text.startswith("table")
    if is_table:
        text = text[6:] if len(text) > 5 else ""
        if not text.strip():
            text = default[6:]
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = template(text)
    body = "".join(execute(tmpl, r) + "\n" for r in rows)
    if not is_table:
        return body
    head = execute(tmpl, headers, gotemplate.HEADER_FUNCS)
    return gotemplate.tabwrite(head + "\n" + body)


def key_values(values: list[str], what: str) -> dict[str, str]:
    """Repeated KEY=VALUE flags (--label, -o, --opt ...) as a map; a bare KEY has an
    empty value."""
    out: dict[str, str] = {}
    for v in values:
        key, _, value = v.partition("=")
        if not key:
            raise SdcError(f"invalid {what} {v!r}: expected KEY=VALUE")
        out[key] = value
    return out


def filters_arg(pairs: list[str]) -> str | None:
    """docker's repeated --filter key=value as the API's filters JSON ({key: [values]})."""
    if not pairs:
        return None
    result: dict[str, list[str]] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise SdcError(f"bad format of filter (expected name=value): {pair!r}")
        result.setdefault(key.strip().lower() if key.strip() != key else key, []).append(value)
    return json.dumps(result)


def emit(text: str) -> None:
    """Print formatter output that carries its own line ends."""
    sys.stdout.write(text)
    sys.stdout.flush()


def go_time(rfc3339: str) -> str:
    """An RFC 3339 time as Go's Time.String() prints it: 2006-01-02 15:04:05.5 +0000 UTC."""
    import re

    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)",
                     rfc3339)
    if not m:
        return rfc3339
    frac = (m.group(3) or "").rstrip("0")
    zone = m.group(4)
    # Go names a zone parsed from a numeric offset by that offset (zero is UTC)
    offset = "+0000" if zone == "Z" else zone.replace(":", "")
    name = "UTC" if offset in ("+0000", "-0000") else offset
    return f"{m.group(1)} {m.group(2)}{'.' + frac if frac else ''} {offset} {name}"


def ellipsis(text: str, width: int) -> str:
    """docker's Ellipsis: TEXT cut to WIDTH characters, the last one an ellipsis."""
    return text if len(text) <= width else text[:width - 1] + "…"


def ps_row(c: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    """The fields of `ps --format`, as docker's container context names them (in the
    sorted order its JSON has); `Label` is a function of a label's name."""
    command = c.get("Command", "")
    if not no_trunc:
        command = ellipsis(command, 20)
    import datetime

    created = datetime.datetime.fromtimestamp(c.get("Created", 0)).astimezone()
    labels: dict[str, str] = c.get("Labels") or {}
    mounts = c.get("Mounts") or []
    networks = sorted((c.get("NetworkSettings") or {}).get("Networks") or {})
    return {
        "Command": json.dumps(command, ensure_ascii=False),
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S %z %Z"),
        "ID": c["Id"] if no_trunc else c["Id"][:12], "Image": c.get("Image", ""),
        "Label": lambda name: labels.get(name, ""),
        "Labels": ",".join(f"{k}={v}" for k, v in labels.items()),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Driver") == "local")),
        "Mounts": ",".join(m.get("Name", "") if no_trunc else ellipsis(m.get("Name", ""), 15)
                           for m in mounts),
        "Names": ",".join(n.lstrip("/") for n in c.get("Names", [])),
        "Networks": ",".join(networks),
        "Ports": ", ".join(f"{p.get('IP', '0.0.0.0')}:{p['PublicPort']}->{p['PrivatePort']}/"
                           f"{p.get('Type', 'tcp')}" if p.get("PublicPort") else
                           f"{p['PrivatePort']}/{p.get('Type', 'tcp')}"
                           for p in c.get("Ports") or []),
        "RunningFor": ago(c.get("Created", 0)), "Size": "0B",
        "State": c.get("State", ""), "Status": c.get("Status", ""),
    }


def quote_command(argv: list[str]) -> str:
    """Shell-quoted command line."""
    import shlex

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


def inspect_each(client: Any, path: str, names: list[str], fmt: str | None) -> int:
    """`X inspect NAMES`: GET PATH (with {} for each name), print what was found through
    FMT, say what was not; 1 if anything was not."""
    results, rc = [], 0
    for name in names:
        try:
            results.append(client.call("GET", path.format(name)))
        except SdcError as e:
            print(f"Error response from daemon: {e}", file=sys.stderr)
            rc = 1
    print_inspected(results, fmt)
    return rc


def print_inspected(results: list[Any], fmt: str | None) -> None:
    """inspect's output: each result through --format, or all as one indented JSON array."""
    if fmt == "json":
        fmt = None
    if fmt:
        tmpl = template(fmt)
        for r in results:
            print(execute(tmpl, r))
    else:
        print(json.dumps(results, indent=4))
