"""JSON decoding for the CLI's start-up path, without importing `json`.

`json`'s decoder imports `re` (and with it `enum` and the regex compiler): a third of
what a short command such as `sdcontainer version` spends on imports.  The C scanner the
stdlib's json drives is used directly here; anything it does not take (or a build of
Python without it) goes to `json.loads`, which also words the errors.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"


class _Context:
    """What the C scanner reads from json.JSONDecoder: the defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__
    memo: dict[str, str] = {}


_scanner: Any = None


def loads(data: bytes | str) -> Any:
    """The JSON document in DATA (json.loads' result and errors)."""
    global _scanner
    text = data.decode() if isinstance(data, bytes) else data
    body = text.strip(_WS)
    if _scanner is None:
        try:
            import _json

            _scanner = _json.make_scanner(_Context())  # type: ignore[arg-type]
        except (ImportError, AttributeError):
            _scanner = False
    if _scanner and body:
        try:
            value, end = _scanner(body, 0)
            if end == len(body):
                return value
        except (StopIteration, ValueError):
            pass
    import json

    return json.loads(text)
