"""bash, zsh and fish completion scripts for sdcontainer, generated from the argparse parser.

The parser is the one source: each command (`run`, `network create`, `container ls`)
becomes a record of its flags, which flags take a value, its sub-commands and what
kind of name each positional argument is.  The three scripts share one algorithm:
walk the words typed so far (skipping flags and their values) to find the command
and the position of the word being completed, then offer sub-commands, flags, a
flag's choices, or the names of containers, images, networks or volumes, which they
ask the CLI for (`sdcontainer ps -a --format '{{.Names}}'` and so on).

    python3 -m sdcontainer.manpages completion bash|zsh|fish
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

# What a word may name, and the command that lists those names (one per line; quiet
# when the daemon is down: completion must not write over the command line).
LISTERS: dict[str, str] = {
    "container": "sdcontainer ps -a --format '{{.Names}}' 2>/dev/null",
    "image": "sdcontainer images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null"
             " | grep -v '<none>'",
    "network": "sdcontainer network ls --format '{{.Name}}' 2>/dev/null",
    "volume": "sdcontainer volume ls -q 2>/dev/null",
}

# Positional destinations (argparse `dest`) and what they name.  `names` of the
# top-level `inspect` are containers first; under `image` they are images.
POSITIONAL_KINDS: dict[str, str] = {
    "container": "container", "containers": "container", "names": "container",
    "image": "image", "images": "image", "source": "image", "target": "image",
    "reference": "image",
    "network": "network", "networks": "network",
    "volumes": "volume",
}

# Flag destinations whose value is a name: `run --network NET`, `-v VOL:/path`.
FLAG_KINDS: dict[str, str] = {
    "network": "network", "volume": "volume", "volumes_from": "container",
    "link": "container",
}


@dataclass(frozen=True)
class Command:
    """What completion needs to know about one command (the top level is key "")."""

    key: str                                   # "network create", "" for sdcontainer itself
    help: str
    flags: tuple[tuple[str, str], ...]         # (flag, help), every spelling
    value_flags: tuple[str, ...]               # flags whose value is the next word
    flag_values: tuple[tuple[str, str], ...]   # (flag, "container" | "choices:a b c")
    subcommands: tuple[tuple[str, str], ...]   # (name, help), aliases included
    positionals: tuple[str, ...]               # the kind of each positional, "" = any word
    rest: str                                  # kind of further positionals; "" = files


def _subparsers(parser: argparse.ArgumentParser
                ) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each sub-command of PARSER, aliases included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                primary = next(n for n, s in action.choices.items() if s is sub)
                yield name, helps.get(name) or helps.get(primary, ""), sub


def _positional_kind(dest: str, key: str) -> str:
    if dest == "names" and key.startswith("image"):
        return "image"
    return POSITIONAL_KINDS.get(dest, "")


def describe(parser: argparse.ArgumentParser, key: str, helptext: str) -> Command:
    """The completion record of PARSER, the command KEY."""
    flags: list[tuple[str, str]] = []
    value_flags: list[str] = []
    flag_values: list[tuple[str, str]] = []
    positionals: list[str] = []
    rest = ""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            continue
        if a.option_strings:
            if a.help == argparse.SUPPRESS:
                continue
            flags += [(s, " ".join((a.help or "").split())) for s in a.option_strings]
            # nargs "?" (`--sig-proxy[=BOOL]`) may or may not eat the next word: not skipped.
            if a.nargs not in (0, "?"):
                value_flags += a.option_strings
                kind = ("choices:" + " ".join(map(str, a.choices)) if a.choices
                        else FLAG_KINDS.get(a.dest, ""))
                if kind:
                    flag_values += [(s, kind) for s in a.option_strings]
            continue
        kind = _positional_kind(a.dest, key)
        if a.nargs in ("+", "*"):
            rest = kind
            if a.nargs == "+":
                positionals.append(kind)
            break
        if a.nargs == argparse.REMAINDER:
            break
        positionals.append(kind)
    subs = tuple((n, " ".join(h.split())) for n, h, _p in _subparsers(parser))
    return Command(key, helptext, tuple(flags), tuple(value_flags), tuple(flag_values), subs,
                   tuple(positionals), rest)


def commands(parser: argparse.ArgumentParser,
             groups: dict[str, dict[str, str]] | None = None) -> list[Command]:
    """Every command of PARSER, depth first, and each GROUPS alias (`container ls` is `ps`)
    with the record of the verb it stands for."""
    found: list[Command] = []

    def walk(p: argparse.ArgumentParser, key: str, helptext: str) -> None:
        found.append(describe(p, key, helptext))
        for name, h, sub in _subparsers(p):
            if groups and not key and name in groups:
                continue  # a management group: added below from what it stands for
            walk(sub, f"{key} {name}".strip(), h)

    walk(parser, "", parser.description or "")
    by_key = {c.key: c for c in found}
    for group, verbs in (groups or {}).items():
        top = by_key[""]
        ghelp = dict(top.subcommands).get(group, "")
        found.append(Command(group, ghelp, (), (), (),
                             tuple((n, by_key[v].help) for n, v in verbs.items() if v in by_key),
                             (), ""))
        for name, verb in verbs.items():
            if verb in by_key:
                c = by_key[verb]
                found.append(Command(f"{group} {name}", c.help, c.flags, c.value_flags,
                                     c.flag_values, c.subcommands, c.positionals, c.rest))
    return found


def verbs(parser: argparse.ArgumentParser) -> list[str]:
    """The top-level verbs of PARSER, aliases included."""
    return [n for n, _h, _p in _subparsers(parser)]


# --- shell code -------------------------------------------------------------------------

def _sq(text: str) -> str:
    """TEXT in single quotes, for any of the three shells."""
    return "'" + text.replace("'", "'\\''") + "'"


def _case_arms(cmds: list[Command], indent: str) -> str:
    """`case` arms (bash and zsh share the syntax) that set the spec of each command."""
    arms = []
    for c in cmds:
        values = " ".join(f"{f}={k.replace(' ', ',')}" for f, k in c.flag_values)
        arms.append(
            f'{indent}{_sq(c.key)})\n'
            f'{indent}    flags={_sq(" ".join(f for f, _h in c.flags))}\n'
            f'{indent}    valflags={_sq(" ".join(c.value_flags))}\n'
            f'{indent}    flagvals={_sq(values)}\n'
            f'{indent}    subs={_sq(" ".join(n for n, _h in c.subcommands))}\n'
            f'{indent}    pos={_sq(" ".join(k or "-" for k in c.positionals))}\n'
            f'{indent}    rest={_sq(c.rest)} ;;')
    arms.append(f"{indent}*) flags=''; valflags=''; flagvals=''; subs=''; pos=''; rest='' ;;")
    return "\n".join(arms)


def _listers_case(indent: str) -> str:
    return "\n".join(f"{indent}{kind}) {cmd} ;;" for kind, cmd in LISTERS.items())


def bash(parser: argparse.ArgumentParser, groups: dict[str, dict[str, str]] | None = None,
         version: str = "") -> str:
    """The bash completion script (`complete -F _sdcontainer sdcontainer`)."""
    return f"""# bash completion for sdcontainer {version}, generated by
# python3 -m sdcontainer.manpages completion bash from the argparse parser:
# edit the parser (sdcontainer/cli), not this file.

# _sdcontainer_spec KEY: set flags, valflags, flagvals, subs, pos and rest for command KEY.
_sdcontainer_spec() {{
    case "$1" in
{_case_arms(commands(parser, groups), "        ")}
    esac
}}

# _sdcontainer_names KIND: the names of that kind, one per line.
_sdcontainer_names() {{
    case "$1" in
{_listers_case("        ")}
    esac
}}

_sdcontainer() {{
    local -a words=()
    local i w cword=0 key="" npos=0 skip=0 prev kind cur
    local flags valflags flagvals subs pos rest
    # COMP_WORDBREAKS splits `busybox:latest` and `web:/etc` at the colon: join them again.
    for ((i = 0; i < ${{#COMP_WORDS[@]}}; i++)); do
        w=${{COMP_WORDS[i]}}
        if ((${{#words[@]}} > 1)) && [[ $w == : || ${{words[-1]}} == *: ]]; then
            words[-1]+=$w
        else
            words+=("$w")
        fi
        ((i == COMP_CWORD)) && cword=$((${{#words[@]}} - 1))
    done
    cur=${{words[cword]}}
    _sdcontainer_spec ""
    for ((i = 1; i < cword; i++)); do
        w=${{words[i]}}
        if ((skip)); then skip=0; continue; fi
        if [[ $w == -* ]]; then
            [[ $w != *=* && " $valflags " == *" $w "* ]] && skip=1
            continue
        fi
        if ((npos == 0)) && [[ " $subs " == *" $w "* ]]; then
            key="${{key:+$key }}$w"
            _sdcontainer_spec "$key"
        else
            npos=$((npos + 1))
        fi
    done
    COMPREPLY=()
    if ((skip)); then
        prev=${{words[cword - 1]}}
        kind=""
        for w in $flagvals; do
            [[ ${{w%%=*}} == "$prev" ]] && kind=${{w#*=}}
        done
        case $kind in
            "") return ;;  # a value we cannot guess: -o default offers files
            choices:*)
                kind=${{kind#choices:}}
                COMPREPLY=($(compgen -W "${{kind//,/ }}" -- "$cur")) ;;
            *) COMPREPLY=($(compgen -W "$(_sdcontainer_names "$kind")" -- "$cur")) ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    if ((npos == 0)) && [[ -n $subs ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    local -a kinds=($pos)
    kind=${{kinds[npos]:-}}
    ((npos >= ${{#kinds[@]}})) && kind=$rest
    [[ -z $kind || $kind == - ]] && return
    COMPREPLY=($(compgen -W "$(_sdcontainer_names "$kind")" -- "$cur"))
    # bash replaces only the part after the last colon of the word.
    if [[ $cur == *:* ]]; then
        local strip=${{cur%"${{cur##*:}}"}}
        COMPREPLY=("${{COMPREPLY[@]#"$strip"}}")
    fi
}}
complete -F _sdcontainer -o default sdcontainer
"""


def _zsh_describe_arrays(cmds: list[Command]) -> str:
    """A zsh function setting `descs`: `name:help` of each sub-command and flag of KEY."""
    arms = []
    for c in cmds:
        entries = [n.replace(":", "\\:") + ":" + h for n, h in (*c.subcommands, *c.flags)]
        arms.append(f"        {_sq(c.key)}) descs=({' '.join(map(_sq, entries))}) ;;")
    arms.append("        *) descs=() ;;")
    return "\n".join(arms)


def zsh(parser: argparse.ArgumentParser, groups: dict[str, dict[str, str]] | None = None,
        version: str = "") -> str:
    """The zsh completion function (`_sdcontainer`, for a directory in $fpath)."""
    cmds = commands(parser, groups)
    return f"""#compdef sdcontainer
# zsh completion for sdcontainer {version}, generated by
# python3 -m sdcontainer.manpages completion zsh from the argparse parser:
# edit the parser (sdcontainer/cli), not this file.

# _sdcontainer_spec KEY: set flags, valflags, flagvals, subs, pos and rest for command KEY.
_sdcontainer_spec() {{
    case "$1" in
{_case_arms(cmds, "        ")}
    esac
}}

# _sdcontainer_descs KEY: set descs to `word:help` of each sub-command and flag of KEY.
_sdcontainer_descs() {{
    case "$1" in
{_zsh_describe_arrays(cmds)}
    esac
}}

_sdcontainer_names() {{
    case "$1" in
{_listers_case("        ")}
    esac
}}

_sdcontainer() {{
    local i w key="" npos=0 skip=0 prev kind cur=${{words[CURRENT]}}
    local flags valflags flagvals subs pos rest
    local -a descs kinds names
    _sdcontainer_spec ""
    for ((i = 2; i < CURRENT; i++)); do
        w=${{words[i]}}
        if ((skip)); then skip=0; continue; fi
        if [[ $w == -* ]]; then
            [[ $w != *=* && " $valflags " == *" $w "* ]] && skip=1
            continue
        fi
        if ((npos == 0)) && [[ " $subs " == *" $w "* ]]; then
            key="${{key:+$key }}$w"
            _sdcontainer_spec "$key"
        else
            npos=$((npos + 1))
        fi
    done
    if ((skip)); then
        prev=${{words[CURRENT - 1]}}
        kind=""
        for w in ${{=flagvals}}; do
            [[ ${{w%%=*}} == "$prev" ]] && kind=${{w#*=}}
        done
        case $kind in
            "") _files ;;
            choices:*) compadd -- ${{(s:,:)${{kind#choices:}}}} ;;
            *) names=(${{(f)"$(_sdcontainer_names $kind)"}}); compadd -- $names ;;
        esac
        return
    fi
    if [[ $cur == -* ]] || {{ ((npos == 0)) && [[ -n $subs ]]; }}; then
        _sdcontainer_descs "$key"
        if [[ $cur == -* ]]; then
            descs=(${{(M)descs:#-*}})
        else
            descs=(${{descs:#-*}})
        fi
        _describe -t commands sdcontainer descs
        return
    fi
    kinds=(${{=pos}})
    kind=${{kinds[npos + 1]:-}}
    ((npos >= ${{#kinds}})) && kind=$rest
    if [[ -z $kind || $kind == - ]]; then
        _files
        return
    fi
    names=(${{(f)"$(_sdcontainer_names $kind)"}})
    compadd -- $names
}}

# Autoloaded from $fpath (as compinit does), this file is the body of _sdcontainer:
# complete now with the function just defined.  Sourced, register it instead.
if [[ $funcstack[1] == _sdcontainer ]]; then
    _sdcontainer "$@"
else
    compdef _sdcontainer sdcontainer
fi
"""


def _fish_str(text: str) -> str:
    """TEXT as a fish single-quoted string (fish escapes only \\ and ' there)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(parser: argparse.ArgumentParser, groups: dict[str, dict[str, str]] | None = None,
         version: str = "") -> str:
    """The fish completion script: one function that prints candidates with descriptions."""
    cmds = commands(parser, groups)
    arms = []
    for c in cmds:
        words = [f"{n}\t{h}" for n, h in c.subcommands]
        flagwords = [f"{f}\t{h}" for f, h in c.flags]
        values = [f"{f}={k.replace(' ', ',')}" for f, k in c.flag_values]
        arms.append(
            f"        case {_fish_str(c.key)}\n"
            f"            set subs {' '.join(map(_fish_str, words))}\n"
            f"            set flags {' '.join(map(_fish_str, flagwords))}\n"
            f"            set valflags {' '.join(map(_fish_str, c.value_flags))}\n"
            f"            set flagvals {' '.join(map(_fish_str, values))}\n"
            f"            set pos {' '.join(_fish_str(k or '-') for k in c.positionals)}\n"
            f"            set rest {_fish_str(c.rest)}")
    listers = "\n".join(f"        case {kind}\n            {cmd}"
                        for kind, cmd in LISTERS.items())
    return f"""# fish completion for sdcontainer {version}, generated by
# python3 -m sdcontainer.manpages completion fish from the argparse parser:
# edit the parser (sdcontainer/cli), not this file.

# __sdcontainer_spec KEY: set subs, flags, valflags, flagvals, pos and rest (in the
# caller's scope) for command KEY.
function __sdcontainer_spec --no-scope-shadowing
    set subs; set flags; set valflags; set flagvals; set pos; set rest ''
    switch $argv[1]
{chr(10).join(arms)}
    end
end

function __sdcontainer_names
    switch $argv[1]
{listers}
    end
end

function __sdcontainer_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l key ''
    set -l npos 0
    set -l skip 0
    set -l subs; set -l flags; set -l valflags; set -l flagvals; set -l pos; set -l rest
    __sdcontainer_spec ''
    for w in $words[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $w
            if not string match -q -- '*=*' $w; and contains -- $w $valflags
                set skip 1
            end
            continue
        end
        set -l subnames (string replace -r '\\t.*' '' -- $subs)
        if test $npos = 0; and contains -- $w $subnames
            set key (string trim -- "$key $w")
            __sdcontainer_spec $key
        else
            set npos (math $npos + 1)
        end
    end
    if test $skip = 1
        set -l kind ''
        for fv in $flagvals
            set -l parts (string split -m 1 = -- $fv)
            test "$parts[1]" = "$words[-1]"; and set kind $parts[2]
        end
        switch $kind
            case ''
                __fish_complete_path $cur
            case 'choices:*'
                string split , -- (string replace choices: '' -- $kind)
            case '*'
                __sdcontainer_names $kind
        end
        return
    end
    if string match -q -- '-*' $cur
        printf '%s\\n' $flags
        return
    end
    if test $npos = 0; and set -q subs[1]
        printf '%s\\n' $subs
        return
    end
    set -l kind $rest
    if test $npos -lt (count $pos)
        set kind $pos[(math $npos + 1)]
    end
    if test -z "$kind"; or test "$kind" = -
        __fish_complete_path $cur
        return
    end
    __sdcontainer_names $kind
end

complete -c sdcontainer -f -a '(__sdcontainer_complete)'
"""


def script(shell: str, parser: argparse.ArgumentParser,
           groups: dict[str, dict[str, str]] | None = None, version: str = "") -> str:
    """The completion script for SHELL ("bash", "zsh" or "fish")."""
    make = {"bash": bash, "zsh": zsh, "fish": fish}[shell]
    return make(parser, groups, version)
