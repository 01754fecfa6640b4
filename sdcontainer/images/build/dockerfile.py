"""Parse a Dockerfile into stages of instructions, as dockerd's classic builder reads it.

Handles the parser directives (``# syntax``, ``# escape``), comments, line
continuations, JSON (exec) and shell forms, and ``--flag=value`` options.  Anything
the classic builder does not know, or we do not implement, is refused with the
line number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ...errors import InvalidArgument

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
         "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
         "HEALTHCHECK", "SHELL"}
_FLAGS = {"FROM": {"platform"}, "COPY": {"from", "chown", "chmod"},
          "ADD": {"chown", "chmod"},
          "HEALTHCHECK": {"interval", "timeout", "start-period", "retries",
                          "start-interval"}}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, options, and argument text."""

    cmd: str
    """Upper-case keyword."""
    rest: str
    """The argument text (continuations joined), options removed."""
    line: int
    original: str
    """The instruction as written (continuations joined), for messages and history."""
    flags: dict[str, str] = field(default_factory=dict)
    json_args: list[str] | None = None
    """The exec form's arguments when REST is a JSON array of strings."""


@dataclass
class Stage:
    """A FROM and the instructions after it."""

    base: str
    name: str
    index: int
    platform: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    """A parsed Dockerfile."""

    escape: str
    global_args: list[Instruction]
    stages: list[Stage]

    def stage_index(self, target: str) -> int:
        """The index of the stage named (or numbered) TARGET."""
        for s in self.stages:
            if s.name and s.name.lower() == target.lower():
                return s.index
        raise InvalidArgument(f"failed to reach build target {target} in Dockerfile")


def _directives(lines: list[str]) -> tuple[str, int]:
    """The escape character, and how many leading lines were directives."""
    escape, seen, n = "\\", set(), 0
    for line in lines:
        m = _DIRECTIVE.match(line.strip())
        if not m or m.group(1).lower() in seen:
            break
        key, value = m.group(1).lower(), m.group(2)
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise InvalidArgument(f"invalid escape token '{value}' does not match ` or \\")
            escape = value
        n += 1
    return escape, n


def _take_flags(cmd: str, rest: str, line: int) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        if name not in _FLAGS.get(cmd, set()):
            raise InvalidArgument(f"Dockerfile line {line}: unknown flag --{name} for {cmd}"
                                  + (" (RUN --mount and friends need BuildKit, which "
                                     "sdcontainer does not implement)" if cmd == "RUN" else ""))
        flags[name] = value if eq else "true"
        rest = after.lstrip()
    return flags, rest


def _json_args(rest: str) -> list[str] | None:
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _logical_lines(text: str, escape: str, skip: int) -> list[tuple[int, str]]:
    """(first line number, joined text) for each instruction; comments dropped."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if n <= skip:
            continue
        stripped = raw.strip()
        if not buf and not stripped:
            continue
        if stripped.startswith("#"):
            continue  # comment lines vanish, even inside a continuation
        if not buf:
            start = n
        body = raw.rstrip()
        if body.endswith(escape) and not body.endswith(escape * 2):
            buf.append(body[:-1])
            continue
        if buf and not stripped:
            continue  # an empty line inside a continuation is skipped
        buf.append(body)
        out.append((start, "".join(buf).strip()))
        buf = []
    if buf:
        out.append((start, "".join(buf).strip()))
    return out


def parse_line(text: str, line: int = 1) -> Instruction:
    """One instruction (also used for ``commit --change`` and ONBUILD triggers)."""
    word, _, rest = text.strip().partition(" ")
    if not word:
        raise InvalidArgument(f"Dockerfile line {line}: empty instruction")
    cmd = word.upper()
    if cmd not in KNOWN:
        raise InvalidArgument(f"Dockerfile line {line}: unknown instruction: {word}")
    rest = rest.strip()
    if "<<" in rest and cmd in ("RUN", "COPY", "ADD") and re.search(r"<<-?['\"]?[A-Za-z]", rest):
        raise InvalidArgument(f"Dockerfile line {line}: heredocs need BuildKit, which "
                              "sdcontainer does not implement")
    flags, rest = _take_flags(cmd, rest, line)
    return Instruction(cmd=cmd, rest=rest, line=line, original=text.strip(), flags=flags,
                       json_args=_json_args(rest))


def parse(text: str) -> Dockerfile:
    """Parse TEXT; InvalidArgument names the line of anything wrong."""
    lines = text.splitlines()
    escape, skip = _directives(lines)
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for line, joined in _logical_lines(text, escape, skip):
        ins = parse_line(joined, line)
        if ins.cmd == "FROM":
            words = ins.rest.split()
            if len(words) == 3 and words[1].lower() == "as":
                base, name = words[0], words[2]
                if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_.-]*", name):
                    raise InvalidArgument(f"Dockerfile line {line}: invalid stage name {name!r}")
            elif len(words) == 1:
                base, name = words[0], ""
            else:
                raise InvalidArgument(f"Dockerfile line {line}: FROM requires one argument "
                                      "(and optionally AS name)")
            stages.append(Stage(base=base, name=name, index=len(stages),
                                platform=ins.flags.get("platform", ""), line=line))
        elif not stages:
            if ins.cmd != "ARG":
                raise InvalidArgument(f"Dockerfile line {line}: {ins.cmd} before the first "
                                      "FROM (only ARG may come first)")
            global_args.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise InvalidArgument("the Dockerfile has no FROM instruction")
    return Dockerfile(escape=escape, global_args=global_args, stages=stages)
