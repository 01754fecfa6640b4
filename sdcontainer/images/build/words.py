"""Docker's word rules: quotes, the escape character and ``$VAR`` expansion.

Expansion follows dockerd's shell lexer: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR:+alternative}`` (and the colon-less ``-``/``+`` forms); single quotes
keep everything literal, double quotes keep spaces but still expand.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import InvalidArgument


def _name_end(s: str, i: int) -> int:
    j = i
    while j < len(s) and (s[j].isalnum() or s[j] == "_"):
        j += 1
    return j


def _brace(s: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    """Expand ``${...}`` whose body starts at S[I]; return the value and the index after ``}``."""
    j = _name_end(s, i)
    name = s[i:j]
    if not name:
        raise InvalidArgument(f"bad substitution in {s!r}")
    if j < len(s) and s[j] == "}":
        return env.get(name, ""), j + 1
    op = s[j:j + 2] if s[j:j + 2] in (":-", ":+") else s[j:j + 1]
    if op not in (":-", ":+", "-", "+"):
        raise InvalidArgument(f"unsupported modifier {s[j:j + 2]!r} in ${{{name}...}}")
    # The word after the operator may itself hold variables and nested braces.
    depth, k = 1, j + len(op)
    while k < len(s):
        if s[k] == escape:
            k += 2
            continue
        if s[k:k + 2] == "${":
            depth += 1
            k += 2
            continue
        if s[k] == "}":
            depth -= 1
            if depth == 0:
                break
        k += 1
    if depth:
        raise InvalidArgument(f"missing '}}' in {s!r}")
    word = expand(s[j + len(op):k], env, escape)
    is_set = name in env
    value = env.get(name, "")
    if op == ":-":
        out = value if value else word
    elif op == "-":
        out = value if is_set else word
    elif op == ":+":
        out = word if value else ""
    else:
        out = word if is_set else ""
    return out, k + 1


def _dollar(s: str, i: int, env: Mapping[str, str], escape: str) -> tuple[str, int]:
    """Expand the variable at S[I] == '$'; return the value and the next index."""
    if s[i + 1:i + 2] == "{":
        return _brace(s, i + 2, env, escape)
    j = _name_end(s, i + 1)
    if j == i + 1:
        return "$", i + 1
    return env.get(s[i + 1:j], ""), j


def expand(s: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """S with variables expanded; quotes and escapes are kept (for later splitting)."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(s):
        ch = s[i]
        if ch == escape and i + 1 < len(s) and quote != "'":
            out.append(s[i:i + 2])
            i += 2
        elif ch == "'" and quote != '"':
            quote = "" if quote else "'"
            out.append(ch)
            i += 1
        elif ch == '"' and quote != "'":
            quote = "" if quote else '"'
            out.append(ch)
            i += 1
        elif ch == "$" and quote != "'":
            value, i = _dollar(s, i, env, escape)
            # Escape what the value holds so splitting leaves it as it is: values are
            # not split again (as docker's ProcessWord for ENV, LABEL, COPY paths).
            special = "\"$" + escape if quote else " \t'\"$" + escape
            out.append("".join(escape + c if c in special else c for c in value))
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def split(s: str, env: Mapping[str, str] | None = None, escape: str = "\\") -> list[str]:
    """S as words: expanded (when ENV is given), split on blanks, quotes removed."""
    if env is not None:
        s = expand(s, env, escape)
    words: list[str] = []
    cur: list[str] = []
    have = False
    i, quote = 0, ""
    while i < len(s):
        ch = s[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                cur.append(ch)
            i += 1
            continue
        if ch == escape and i + 1 < len(s):
            nxt = s[i + 1]
            if quote == '"' and nxt not in ('"', escape, "$"):
                cur.append(ch)
            cur.append(nxt)
            have = True
            i += 2
            continue
        if quote == '"':
            if ch == '"':
                quote = ""
            else:
                cur.append(ch)
            i += 1
            continue
        if ch in "'\"":
            quote, have = ch, True
        elif ch in " \t":
            if have or cur:
                words.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(ch)
            have = True
        i += 1
    if quote:
        raise InvalidArgument(f"unterminated quote in {s!r}")
    if have or cur:
        words.append("".join(cur))
    return words


def one(s: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """S expanded and unquoted as one word (spaces kept): WORKDIR, USER, COPY paths."""
    return " ".join(split(s, env, escape)) if s.strip() else ""
