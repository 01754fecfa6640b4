"""Go's text/template, as the docker CLI uses it for --format: a parser and an evaluator.

Data is what the daemon sends (JSON decoded), so the evaluator follows what docker
prints for its typed records where JSON alone is ambiguous: integers stay integers,
a missing key prints ``<no value>``, ``index`` of a missing map key is empty.  Stdlib
only; imported by the verbs that format.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(ValueError):
    """A template that does not parse, or that fails while it runs."""


class _Missing:
    """A key the data does not have: prints as Go's ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

# docker decodes into Go structs whose field names differ from a few JSON names.
ALIASES = {"ID": "Id", "Id": "ID", "APIVersion": "ApiVersion", "ApiVersion": "APIVersion"}

# -- lexing --------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|
        (?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_CHAIN = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unquote(text: str) -> str:
    body = text[1:-1]

    def esc(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "xuU":
            return chr(int(s[1:], 16))
        if s in _ESCAPES:
            return _ESCAPES[s]
        raise TemplateError(f"invalid escape sequence \\{s}")
    return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", esc, body)


class Tok:
    """One token of an action."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind, self.text = kind, text

    def __repr__(self) -> str:
        return self.text


def _lex_action(src: str) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {src[pos]!r} in command")
        kind = m.lastgroup or ""
        text = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind in ("rparen", "var") and pos < len(src):
            chain = _CHAIN.match(src, pos)  # (x).Field and $x.Field
            if chain:
                toks.append(Tok(kind, text))
                toks.append(Tok("chain", chain.group()))
                pos = chain.end()
                continue
        toks.append(Tok(kind, text))
    return toks


# -- parse tree ----------------------------------------------------------------------------

class Node:
    """A node of the parse tree."""


class Text(Node):
    def __init__(self, text: str) -> None:
        self.text = text


class Pipeline(Node):
    def __init__(self, decl: list[str], op: str, cmds: list[list[Node]]) -> None:
        self.decl, self.op, self.cmds = decl, op, cmds


class Action(Node):
    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe


class Branch(Node):
    """if, with and range: a pipeline, a body, and an else body."""

    def __init__(self, kind: str, pipe: Pipeline, body: list[Node], other: list[Node]) -> None:
        self.kind, self.pipe, self.body, self.other = kind, pipe, body, other


class Control(Node):
    def __init__(self, kind: str) -> None:
        self.kind = kind  # break, continue


class Define(Node):
    def __init__(self, name: str, pipe: Pipeline | None) -> None:
        self.name, self.pipe = name, pipe


class Field(Node):
    def __init__(self, names: list[str]) -> None:
        self.names = names


class Variable(Node):
    def __init__(self, name: str, names: list[str]) -> None:
        self.name, self.names = name, names


class Ident(Node):
    def __init__(self, name: str) -> None:
        self.name = name


class Literal(Node):
    def __init__(self, value: Any) -> None:
        self.value = value


class Dot(Node):
    pass


class Sub(Node):
    """(pipeline).Fields"""

    def __init__(self, pipe: Pipeline, names: list[str]) -> None:
        self.pipe, self.names = pipe, names


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _split(src: str) -> list[tuple[str, str]]:
    """The template as ("text", ...) and ("action", ...) pieces, trim markers applied."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if start < 0:
            if text:
                pieces.append(("text", text))
            return pieces
        inner_start = start + 2
        if src.startswith("- ", inner_start) or (src.startswith("-", inner_start) and
                                                  src[inner_start + 1:inner_start + 2] in
                                                  ("\t", "\r", "\n")):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        if text:
            pieces.append(("text", text))
        if src.startswith("/*", _skip_ws(src, inner_start)):
            close_c = src.find("*/", inner_start)
            if close_c < 0:
                raise TemplateError("unclosed comment")
            end = src.find("}}", close_c)
            if end < 0:
                raise TemplateError("unclosed action")
            inner = src[inner_start:end]
            trim_next = inner.endswith(" -") or inner.endswith("\n-") or inner.endswith("\t-")
            pos = end + 2
            continue
        end = _find_close(src, inner_start)
        inner = src[inner_start:end]
        trim_next = False
        if len(inner) >= 2 and inner[-1] == "-" and inner[-2] in " \t\r\n":
            inner = inner[:-1]
            trim_next = True
        pieces.append(("action", inner))
        pos = end + 2


def _skip_ws(src: str, i: int) -> int:
    while i < len(src) and src[i] in " \t\r\n":
        i += 1
    return i


def _find_close(src: str, i: int) -> int:
    """Where the action starting at I ends, skipping quoted strings."""
    while i < len(src):
        c = src[i]
        if src.startswith("}}", i):
            return i
        if c in "\"'`":
            j = i + 1
            while j < len(src) and src[j] != c:
                if c != "`" and src[j] == "\\":
                    j += 1
                if c != "`" and src[j] == "\n":
                    break
                j += 1
            if j >= len(src) or src[j] != c:
                raise TemplateError("unterminated quoted string")
            i = j + 1
            continue
        i += 1
    raise TemplateError("unclosed action")


class _Parser:
    def __init__(self, src: str) -> None:
        self.pieces = _split(src)
        self.i = 0
        self.defines: dict[str, list[Node]] = {}

    def parse(self) -> list[Node]:
        body, stop = self.list_until(())
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop[0]}}}}}")
        return body

    def list_until(self, stops: tuple[str, ...]
                   ) -> tuple[list[Node], tuple[str, list[Tok]] | None]:
        nodes: list[Node] = []
        while self.i < len(self.pieces):
            kind, text = self.pieces[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(Text(text))
                continue
            toks = _lex_action(text)
            if not toks:
                raise TemplateError("missing value for command")
            head = toks[0].text if toks[0].kind == "ident" else ""
            if head in ("end", "else"):
                if head not in stops:
                    raise TemplateError(f"unexpected {{{{{head}}}}}")
                return nodes, (head, toks[1:])
            if head in ("if", "with", "range"):
                nodes.append(self.branch(head, toks[1:]))
            elif head in ("break", "continue"):
                nodes.append(Control(head))
            elif head in ("define", "block"):
                name = self.string_arg(toks[1:2], head)
                pipe = self.pipeline(toks[2:]) if head == "block" else None
                body, stop = self.list_until(("end",))
                if stop is None:
                    raise TemplateError(f"unexpected EOF in {head}")
                self.defines[name] = body
                if head == "block":
                    nodes.append(Define(name, pipe))
            elif head == "template":
                name = self.string_arg(toks[1:2], head)
                nodes.append(Define(name, self.pipeline(toks[2:]) if len(toks) > 2 else None))
            else:
                nodes.append(Action(self.pipeline(toks)))
        if stops:
            raise TemplateError("unexpected EOF")
        return nodes, None

    @staticmethod
    def string_arg(toks: list[Tok], head: str) -> str:
        if not toks or toks[0].kind not in ("str", "raw"):
            raise TemplateError(f"missing name in {head}")
        return toks[0].text[1:-1] if toks[0].kind == "raw" else _unquote(toks[0].text)

    def branch(self, kind: str, toks: list[Tok]) -> Branch:
        pipe = self.pipeline(toks, allow_two=kind == "range")
        body, stop = self.list_until(("end", "else"))
        if stop is None:
            raise TemplateError(f"unexpected EOF in {kind}")
        other: list[Node] = []
        if stop[0] == "else":
            rest = stop[1]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                # {{else if x}} is {{else}}{{if x}}...{{end}} sharing the one {{end}}
                other = [self.branch(rest[0].text, rest[1:])]
            else:
                if rest:
                    raise TemplateError(f"unexpected {rest[0].text!r} in else")
                other, stop2 = self.list_until(("end",))
                if stop2 is None:
                    raise TemplateError(f"unexpected EOF in {kind}")
        return Branch(kind, pipe, body, other)

    def pipeline(self, toks: list[Tok], allow_two: bool = False) -> Pipeline:
        decl: list[str] = []
        op = ""
        for n in ((1, 2) if not allow_two else (1, 3, 2)):
            if n == 3 and len(toks) >= 4 and toks[0].kind == "var" and toks[1].kind == "comma" \
                    and toks[2].kind == "var" and toks[3].kind in ("declare", "assign"):
                decl, op, toks = [toks[0].text, toks[2].text], toks[3].kind, toks[4:]
                break
            if n == 1 and len(toks) >= 2 and toks[0].kind == "var" and \
                    toks[1].kind in ("declare", "assign"):
                decl, op, toks = [toks[0].text], toks[1].kind, toks[2:]
                break
        cmds: list[list[Node]] = []
        pos = 0
        current: list[Node] = []
        while pos < len(toks):
            t = toks[pos]
            if t.kind == "pipe":
                if not current:
                    raise TemplateError("missing command")
                cmds.append(current)
                current = []
                pos += 1
                continue
            node, pos = self.operand(toks, pos)
            current.append(node)
        if not current:
            raise TemplateError("missing value for command")
        cmds.append(current)
        return Pipeline(decl, op, cmds)

    def operand(self, toks: list[Tok], pos: int) -> tuple[Node, int]:
        t = toks[pos]
        nxt = toks[pos + 1] if pos + 1 < len(toks) else None
        chain = nxt.text.split(".")[1:] if nxt is not None and nxt.kind == "chain" else None
        if t.kind == "field":
            return Field(t.text.split(".")[1:]), pos + 1
        if t.kind == "dot":
            return Dot(), pos + 1
        if t.kind == "var":
            return Variable(t.text, chain or []), pos + (2 if chain else 1)
        if t.kind in ("str", "char"):
            value = _unquote(t.text)
            return Literal(value if t.kind == "str" else ord(value)), pos + 1
        if t.kind == "raw":
            return Literal(t.text[1:-1]), pos + 1
        if t.kind == "number":
            return Literal(_number(t.text)), pos + 1
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return Literal(t.text == "true"), pos + 1
            if t.text == "nil":
                return Literal(None), pos + 1
            return Ident(t.text), pos + 1
        if t.kind == "lparen":
            depth, end = 0, pos
            for end in range(pos, len(toks)):
                if toks[end].kind == "lparen":
                    depth += 1
                elif toks[end].kind == "rparen":
                    depth -= 1
                    if depth == 0:
                        break
            if depth:
                raise TemplateError("unclosed left paren")
            pipe = self.pipeline(toks[pos + 1:end])
            after = toks[end + 1] if end + 1 < len(toks) else None
            names = after.text.split(".")[1:] if after is not None and after.kind == "chain" else []
            return Sub(pipe, names), end + 1 + (1 if names else 0)
        raise TemplateError(f"unexpected {t.text!r} in operand")


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        try:
            return float(clean)
        except ValueError:
            raise TemplateError(f"bad number syntax: {text!r}") from None


# -- printing values as Go's fmt %v does -----------------------------------------------------

def _go_float(f: float) -> str:
    """fmt's %v of a float64: shortest digits, an exponent when it is < -4 or >= 6 (strconv %g)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    from decimal import Decimal

    t = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    exp = len(digits) + int(t.exponent) - 1
    sign = "-" if f < 0 else ""
    if exp < -4 or exp >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + _plain(digits, exp)


def _plain(digits: str, exp: int) -> str:
    if exp < 0:
        return "0." + "0" * (-exp - 1) + digits
    if len(digits) <= exp + 1:
        return digits + "0" * (exp + 1 - len(digits))
    return digits[:exp + 1] + "." + digits[exp + 1:]


def show(value: Any, top: bool = True) -> str:
    """VALUE as text/template prints it (fmt's %v)."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>" if not top else "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(show(v, False) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{show(value[k], False)}" for k in sorted(value)) + "]"
    return str(value)


def to_json(value: Any) -> str:
    """docker's `json` function: compact, no HTML escaping, map keys as given."""
    if value is MISSING:
        return "null"
    return json.dumps(_plain_data(value), ensure_ascii=False, separators=(",", ":"))


_GO_FIELD = re.compile(r"[A-Z][A-Za-z0-9]*\Z")


def _plain_data(value: Any) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        # Go marshals a struct in field order but a map sorted: keys that cannot be Go
        # field names (labels, network names, "80/tcp") mark a map.
        if not all(_GO_FIELD.match(k) for k in keys):
            keys.sort()
        return {k: _plain_data(value[k]) for k in keys if not callable(value[k])}
    if isinstance(value, list):
        return [_plain_data(v) for v in value]
    return value


# -- functions -------------------------------------------------------------------------------

def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, and empty strings, slices and maps are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def _basic(v: Any) -> Any:
    if v is MISSING or v is None:
        return None
    if isinstance(v, (dict, list)):
        raise TemplateError("invalid type for comparison")
    return v


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    a = _basic(a)
    for b in others:
        b = _basic(b)
        if a is not None and b is not None and _kind(a) != _kind(b):
            raise TemplateError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _kind(v: Any) -> str:
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "slice"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return type(v).__name__


def _lt(a: Any, b: Any) -> bool:
    a, b = _basic(a), _basic(b)
    if a is None or b is None or _kind(a) != _kind(b) or isinstance(a, bool):
        raise TemplateError("incompatible types for comparison")
    return bool(a < b)


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if item is MISSING or item is None:
            raise TemplateError("index of untyped nil")
        if isinstance(item, dict):
            if not isinstance(k, str):
                raise TemplateError("value has type int; should be string")
            item = item.get(k, "")
        elif isinstance(item, (list, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"cannot index slice/array with type {_kind(k)}")
            if not 0 <= k < len(item):
                raise TemplateError(f"index out of range: {k}")
            item = item[k] if isinstance(item, list) else ord(item[k])
        else:
            raise TemplateError(f"can't index item of type {_kind(item)}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, (str, list, dict)):
        return len(item.encode() if isinstance(item, str) else item)
    raise TemplateError(f"len of type {_kind(item) if item is not MISSING else 'nil'}")


def _slice(item: Any, *idx: int) -> Any:
    if not isinstance(item, (str, list)):
        raise TemplateError("can't slice item")
    if len(idx) > 2:
        raise TemplateError("too many slice indexes")
    return item[slice(*idx)] if idx else item


def _title(s: str) -> str:
    out, prev_sep = [], True
    for c in s:
        out.append(c.upper() if prev_sep else c)
        prev_sep = not (c.isalnum() or c == "_")
    return "".join(out)


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(show(a, False))
    return "".join(out)


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        flags, width, verb = m.group(1), m.group(2), m.group(3)
        if verb == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        if verb in "vs":
            text = show(a, False)
        elif verb == "q":
            text = json.dumps(show(a, False), ensure_ascii=False)
        elif verb == "d" and isinstance(a, int):
            text = str(a)
        elif verb in "xX" and isinstance(a, (int, str)):
            text = format(a, verb) if isinstance(a, int) else a.encode().hex()
            text = text.upper() if verb == "X" else text
        elif verb in "fFeEgG" and isinstance(a, (int, float)):
            text = ("%" + flags + verb) % a
            flags = ""
        elif verb == "t" and isinstance(a, bool):
            text = show(a)
        else:
            text = f"%!{verb}({_kind(a)}={show(a, False)})"
        w = int(width) if width else 0
        return text.ljust(w) if "-" in flags else text.rjust(w, "0" if "0" in flags else " ")
    return re.sub(r"%([-+# 0]*)(\d*(?:\.\d+)?)([a-zA-Z%])", one, fmt)


def _str(v: Any, fn: str) -> str:
    if not isinstance(v, str):
        raise TemplateError(f"wrong type for value; expected string; got {_kind(v)} in {fn}")
    return v


def _int(v: Any, fn: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TemplateError(f"wrong type for value; expected int; got {_kind(v)} in {fn}")
    return v


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise TemplateError("wrong type for value; expected []string in join")
    return _str(sep, "join").join(items)


def _truncate(s: Any, n: Any) -> str:
    text, length = _str(s, "truncate"), _int(n, "truncate")
    return text if len(text) < length else text[:length]


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    text = _str(s, "pad")
    return text if not text else " " * _int(prefix, "pad") + text + " " * _int(suffix, "pad")


def _split_fn(s: Any, sep: Any) -> list[str]:
    s, sep = _str(s, "split"), _str(sep, "split")
    return list(s) if sep == "" else s.split(sep)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": to_json, "join": _join, "split": _split_fn,
    "lower": lambda s: _str(s, "lower").lower(), "upper": lambda s: _str(s, "upper").upper(),
    "title": lambda s: _title(_str(s, "title")), "truncate": _truncate, "pad": _pad,
    "println": lambda *a: " ".join(show(x, False) for x in a) + "\n",
    "print": _sprint, "printf": lambda f, *a: _printf(_str(f, "printf"), *a),
    "len": _len, "index": _index, "slice": _slice,
    "not": lambda a: not truth(a),
    "eq": _eq, "ne": lambda a, b: not _eq(a, b), "lt": _lt,
    "le": lambda a, b: _lt(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_lt(a, b) or _eq(a, b)), "ge": lambda a, b: not _lt(a, b),
    "html": lambda *a: _sprint(*a).replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;").replace('"', "&#34;").replace("'", "&#39;"),
    "urlquery": lambda *a: __import__("urllib.parse").parse.quote_plus(_sprint(*a)),
}

# The header row of a `table` is the same template run on the column titles: docker's
# header functions give their first argument back unchanged.
HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    name: (lambda v, *_: v) for name in
    ("json", "split", "join", "title", "lower", "upper", "truncate", "pad")}


# -- evaluation ------------------------------------------------------------------------------

class Template:
    """A parsed template: ``Template(text).execute(data)``."""

    def __init__(self, text: str) -> None:
        parser = _Parser(text)
        self.tree = parser.parse()
        self.defines = parser.defines
        self.funcs = FUNCS
        self._check(self.tree)

    def _check(self, nodes: list[Node]) -> None:
        for n in nodes:
            if isinstance(n, Action):
                self._check_pipe(n.pipe)
            elif isinstance(n, Branch):
                self._check_pipe(n.pipe)
                self._check(n.body)
                self._check(n.other)

    def _check_pipe(self, pipe: Pipeline) -> None:
        for cmd in pipe.cmds:
            for node in cmd:
                if isinstance(node, Ident) and node.name not in FUNCS and \
                        node.name not in ("and", "or"):
                    raise TemplateError(f'function "{node.name}" not defined')
                if isinstance(node, Sub):
                    self._check_pipe(node.pipe)

    def execute(self, data: Any, funcs: dict[str, Callable[..., Any]] | None = None) -> str:
        """Run the template on DATA; FUNCS override functions (a table's header)."""
        run = _Run(self, data, {**FUNCS, **(funcs or {})})
        out: list[str] = []
        run.walk(self.tree, data, [("$", data)], out)
        return "".join(out)


class _Run:
    def __init__(self, tmpl: Template, data: Any, funcs: dict[str, Callable[..., Any]]) -> None:
        self.tmpl, self.funcs, self.depth = tmpl, funcs, 0

    def walk(self, nodes: list[Node], dot: Any, scope: list[tuple[str, Any]],
             out: list[str]) -> None:
        mark = len(scope)
        for n in nodes:
            if isinstance(n, Text):
                out.append(n.text)
            elif isinstance(n, Action):
                value = self.pipeline(n.pipe, dot, scope)
                if not n.pipe.decl:
                    out.append(show(value))
            elif isinstance(n, Branch):
                self.branch(n, dot, scope, out)
            elif isinstance(n, Control):
                raise _Break() if n.kind == "break" else _Continue()
            elif isinstance(n, Define):
                body = self.tmpl.defines.get(n.name)
                if body is None:
                    raise TemplateError(f'no such template "{n.name}"')
                self.depth += 1
                if self.depth > 100:
                    raise TemplateError("exceeded maximum template depth")
                arg = self.pipeline(n.pipe, dot, scope) if n.pipe else None
                self.walk(body, arg, [("$", arg)], out)
                self.depth -= 1
        del scope[mark:]

    def branch(self, n: Branch, dot: Any, scope: list[tuple[str, Any]], out: list[str]) -> None:
        mark = len(scope)
        if n.kind != "range":
            value = self.pipeline(n.pipe, dot, scope)
            if truth(value):
                self.walk(n.body, value if n.kind == "with" else dot, scope, out)
            else:
                self.walk(n.other, dot, scope, out)
            del scope[mark:]
            return
        pipe = Pipeline([], "", n.pipe.cmds)
        value = self.pipeline(pipe, dot, scope)
        if isinstance(value, dict):
            items: list[tuple[Any, Any]] = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is MISSING or value is None:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {show(value)}")
        if not items:
            self.walk(n.other, dot, scope, out)
            return
        for key, elem in items:
            if len(n.pipe.decl) == 1:
                self.assign(scope, n.pipe.decl[0], elem, n.pipe.op, mark)
            elif len(n.pipe.decl) == 2:
                self.assign(scope, n.pipe.decl[0], key, n.pipe.op, mark)
                self.assign(scope, n.pipe.decl[1], elem, n.pipe.op, mark)
            try:
                self.walk(n.body, elem, scope, out)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                del scope[mark + (len(n.pipe.decl) if n.pipe.op == "declare" else 0):]
        del scope[mark:]

    @staticmethod
    def assign(scope: list[tuple[str, Any]], name: str, value: Any, op: str, mark: int) -> None:
        if op == "declare":
            for i in range(mark, len(scope)):
                if scope[i][0] == name:
                    scope[i] = (name, value)
                    return
            scope.append((name, value))
            return
        for i in range(len(scope) - 1, -1, -1):
            if scope[i][0] == name:
                scope[i] = (name, value)
                return
        raise TemplateError(f"undefined variable: {name}")

    def pipeline(self, pipe: Pipeline, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        value: Any = _NOFINAL
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, scope, value)
        if pipe.decl:
            if pipe.op == "declare":
                scope.append((pipe.decl[0], value))
            else:
                self.assign(scope, pipe.decl[0], value, "assign", 0)
        return value

    def command(self, cmd: list[Node], dot: Any, scope: list[tuple[str, Any]],
                final: Any) -> Any:
        head = cmd[0]
        if isinstance(head, Ident):
            return self.call(head.name, cmd[1:], dot, scope, final)
        if isinstance(head, (Field, Variable, Sub)):
            args = [self.arg(a, dot, scope) for a in cmd[1:]]
            if final is not _NOFINAL:
                args.append(final)
            return self.operand(head, dot, scope, args)
        if len(cmd) > 1 or final is not _NOFINAL:
            raise TemplateError(f"can't give argument to non-function {self.describe(head)}")
        return self.arg(head, dot, scope)

    @staticmethod
    def describe(node: Node) -> str:
        if isinstance(node, Literal):
            return show(node.value)
        return "."

    def call(self, name: str, argnodes: list[Node], dot: Any, scope: list[tuple[str, Any]],
             final: Any) -> Any:
        if name in ("and", "or"):
            nodes: list[Any] = list(argnodes) + ([_Value(final)] if final is not _NOFINAL else [])
            if not nodes:
                raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for node in nodes:
                value = node.value if isinstance(node, _Value) else self.arg(node, dot, scope)
                if truth(value) == (name == "or"):
                    return value
            return value
        fn = self.funcs.get(name)
        if fn is None:
            raise TemplateError(f'function "{name}" not defined')
        args = [self.arg(a, dot, scope) for a in argnodes]
        if final is not _NOFINAL:
            args.append(final)
        try:
            return fn(*args)
        except TypeError:
            raise TemplateError(f"wrong number of args for {name}") from None
        except TemplateError as e:
            raise TemplateError(f"error calling {name}: {e}") from None

    def arg(self, node: Node, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Ident):
            return self.call(node.name, [], dot, scope, _NOFINAL)
        return self.operand(node, dot, scope, [])

    def operand(self, node: Node, dot: Any, scope: list[tuple[str, Any]], args: list[Any]) -> Any:
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Field):
            return self.chain(dot, node.names, args)
        if isinstance(node, Variable):
            for name, value in reversed(scope):
                if name == node.name:
                    return self.chain(value, node.names, args)
            raise TemplateError(f"undefined variable: {node.name}")
        if isinstance(node, Sub):
            return self.chain(self.pipeline(node.pipe, dot, scope), node.names, args)
        if isinstance(node, Literal):
            return node.value
        raise TemplateError("bad operand")

    @staticmethod
    def chain(value: Any, names: list[str], args: list[Any]) -> Any:
        for i, name in enumerate(names):
            if value is MISSING:
                return MISSING
            if value is None:
                raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
            if not isinstance(value, dict):
                raise TemplateError(f"can't evaluate field {name} in type {_kind(value)}")
            if name in value:
                value = value[name]
            elif ALIASES.get(name) in value:
                value = value[ALIASES[name]]
            else:
                value = MISSING
            if callable(value):
                value = value(*(args if i == len(names) - 1 else []))
                continue
            if args and i == len(names) - 1:
                raise TemplateError(f"{name} has arguments but cannot be invoked as function")
        if not names and args:
            raise TemplateError("can't give argument to non-function")
        return value


class _Value:
    def __init__(self, value: Any) -> None:
        self.value = value


_NOFINAL: Any = object()


def render(text: str, data: Any) -> str:
    """Parse TEXT and run it on DATA."""
    return Template(text).execute(data)


# -- docker's tabwriter (minwidth 10, tabwidth 1, padding 3, blanks) --------------------------

def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Align TEXT's tab-separated cells as Go's text/tabwriter with docker's settings."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts = []
            for j, c in enumerate(cells):
                if j < len(widths):
                    parts.append(c + " " * (widths[j] - len(c)))
                else:
                    parts.append(c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)
