"""Every option of every verb says what it does in `--help` (and so in the man pages)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from sdcontainer import manpages
from sdcontainer.cli.main import VERB_MODULES, build_parser


def parsers(p: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """P and every subcommand's parser below it."""
    yield p
    for _name, _aliases, _help, sub in manpages.subcommands(p):
        yield from parsers(sub)


def undocumented(p: argparse.ArgumentParser) -> list[str]:
    """`prog --flag` of each option of P (but -h/--help) that has no help text."""
    return [f"{q.prog} {'/'.join(a.option_strings)}" for q in parsers(p) for a in q._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)
            and not (a.help or "").strip()]


def test_every_option_has_help() -> None:
    assert undocumented(build_parser()) == []


@pytest.mark.parametrize("verb", [v for verbs in VERB_MODULES.values() for v in verbs])
def test_every_verb_as_main_builds_it(verb: str) -> None:
    """The parser main.py builds for one verb alone (the only= fast path) is documented
    too, and has a one-line summary."""
    p = build_parser(verb)
    assert undocumented(p) == []
    helps = {name: h for name, _aliases, h, _sub in manpages.subcommands(p)}
    assert helps.get(verb), f"{verb} has no summary"
