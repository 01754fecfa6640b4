"""The man pages and the completion scripts generated from the parsers: every page has
the sections a reader looks for, every verb has examples that parse, every option is
documented, and the three shells' scripts know every verb."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from sdcontainer import manpages
from sdcontainer.cli import completion
from sdcontainer.cli.client import Usage
from sdcontainer.cli.examples import EXAMPLES
from sdcontainer.cli.main import GROUPS, VERB_MODULES, build_parser, expand_group

REPO = Path(__file__).parents[2]
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "FILES", "SEE ALSO")
VERBS = [v for verbs in VERB_MODULES.values() for v in verbs]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("man")
    return {p.name: p.read_text() for p in manpages.write_man(out)}


def sections(page: str) -> list[str]:
    return [s.strip('"') for s in re.findall(r"^\.SH (.*)$", page, re.M)]


def test_every_page_has_the_sections(pages: dict[str, str]) -> None:
    assert {f"sdcontainer-{v}.1" for v in (*VERBS, *GROUPS)} | {
        "sdcontainer.1", "sdcontainerd.8"} == set(pages)
    for name, text in pages.items():
        found = sections(text)
        missing = [s for s in SECTIONS if s not in found]
        assert not missing, (name, missing)
        examples = text.split(".SH EXAMPLES", 1)[1].split(".SH ", 1)[0]
        assert "\\fB" in examples, f"{name}: EXAMPLES without a command"


def test_verb_pages_list_every_option(pages: dict[str, str]) -> None:
    parser = build_parser()
    for name, _aliases, _help, sub in manpages.subcommands(parser):
        text = pages[f"sdcontainer-{name}.1"].replace("\\-", "-")
        for p in [sub, *(s for _n, _a, _h, s in manpages.subcommands(sub))]:
            for action in p._actions:
                for flag in action.option_strings:
                    assert f"\\fB{flag}\\fR" in text, (name, p.prog, flag)


def sdcontainer_words(line: str) -> list[str]:
    """The arguments of the sdcontainer command in an example's shell line."""
    for part in re.split(r"&&|\||;|>", line.replace("\\\n", " ")):
        words = shlex.split(part)
        if words[:1] == ["sdcontainer"]:
            return words[1:]
    raise AssertionError(f"no sdcontainer command in {line!r}")


@pytest.mark.parametrize("verb", [*VERBS, *GROUPS])
def test_every_verb_has_examples_that_parse(verb: str) -> None:
    assert EXAMPLES.get(verb), f"{verb} has no example"
    for ex in EXAMPLES[verb]:
        assert ex.says.strip() and ex.command.strip()
        args = expand_group(sdcontainer_words(ex.command))
        try:
            build_parser(args[0]).parse_args(args)
        except (Usage, SystemExit) as e:
            pytest.fail(f"{ex.command!r} does not parse: {e}")


def test_examples_name_real_verbs() -> None:
    assert set(EXAMPLES) <= {*VERBS, *GROUPS}


def test_config_page_sections() -> None:
    """sdcontainer.toml(5) and the other hand-written (5) pages (pandoc markdown)."""
    for page in ("sdcontainer.toml.5.md", "sdcontainer.container.5.md"):
        heads = re.findall(r"^# (.*)$", (REPO / "docs/man" / page).read_text(), re.M)
        for want in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            assert want in heads, (page, want)
        assert {"EXAMPLE", "EXAMPLES"} & set(heads), page
    heads = re.findall(r"^# (.*)$", (REPO / "docs/man/sdcontainer.toml.5.md").read_text(), re.M)
    assert "FILES" in heads


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
def test_pages_render_without_warnings(pages: dict[str, str], tmp_path: Path) -> None:
    """groff, as man runs it, has nothing to say about any page (one run for all)."""
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
    r = subprocess.run(["groff", "-man", "-Tutf8", "-wmac", "-ww", "-z",
                        *sorted(str(p) for p in tmp_path.iterdir())],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# --- completion -----------------------------------------------------------------------

SHELLS = ("bash", "zsh", "fish")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("completion")
    parser = build_parser()
    found = {}
    for shell in SHELLS:
        found[shell] = out / f"sdcontainer.{shell}"
        found[shell].write_text(completion.script(shell, parser, GROUPS))
    return found


def test_scripts_know_every_verb(scripts: dict[str, Path]) -> None:
    parser = build_parser()
    verbs = completion.verbs(parser)
    assert set(VERBS) | set(GROUPS) <= set(verbs)
    for shell, path in scripts.items():
        text = path.read_text()
        for verb in verbs:
            assert re.search(rf"(?<![\w-]){re.escape(verb)}(?![\w-])", text), (shell, verb)
        for key in ("network create", "container ls", "image rm", "volume rm"):
            assert f"'{key}'" in text, (shell, key)


@pytest.mark.parametrize("shell", SHELLS)
def test_script_syntax(scripts: dict[str, Path], shell: str) -> None:
    if not shutil.which(shell):
        pytest.skip(f"{shell} is not installed (tools/install-deps installs it)")
    r = subprocess.run([shell, "-n", str(scripts[shell])], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def bash_complete(script: Path, line: str) -> list[str]:
    """What bash's completion function offers for LINE (completing its last word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    quoted = " ".join(shlex.quote(w) for w in words)
    bash = shutil.which("bash") or "bash"
    r = subprocess.run([bash, "-c", f"source {script}; COMP_WORDS=({quoted}); "
                        f"COMP_CWORD={len(words) - 1}; _sdcontainer; "
                        "printf '%s\\n' \"${COMPREPLY[@]}\""],
                       capture_output=True, text=True, check=True,
                       env={"PATH": "/nonexistent"})  # no CLI: names complete to nothing
    return r.stdout.split()


def test_bash_completes_verbs_and_flags(scripts: dict[str, Path]) -> None:
    s = scripts["bash"]
    assert bash_complete(s, "sdcontainer ru") == ["run"]
    assert bash_complete(s, "sdcontainer network create --su") == ["--subnet"]
    assert "disconnect" in bash_complete(s, "sdcontainer network ")
    assert bash_complete(s, "sdcontainer container pr") == ["prune"]
    assert "--all" in bash_complete(s, "sdcontainer container ls --")
    assert bash_complete(s, "sdcontainer run --cgroupns ") == ["host", "private"]
    # a flag's value is skipped, not taken for the image: the next word is the command
    assert bash_complete(s, "sdcontainer run --name x busybox --") == bash_complete(
        s, "sdcontainer run --")


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_completes_verbs_and_flags(scripts: dict[str, Path]) -> None:
    def complete(line: str) -> list[str]:
        r = subprocess.run(["fish", "--no-config", "-c",
                            f"source {scripts['fish']}; complete -C {shlex.quote(line)}"],
                           capture_output=True, text=True, check=True)
        return [w.split("\t")[0] for w in r.stdout.splitlines()]

    assert complete("sdcontainer ru") == ["run"]
    assert complete("sdcontainer network create --su") == ["--subnet"]
    assert "prune" in complete("sdcontainer volume ")


def test_completion_kinds() -> None:
    """Positional arguments complete to the names they are."""
    cmds = {c.key: c for c in completion.commands(build_parser(), GROUPS)}
    assert cmds["stop"].positionals == ("container",) and cmds["stop"].rest == "container"
    assert cmds["run"].positionals == ("image",) and cmds["run"].rest == ""
    assert cmds["network connect"].positionals == ("network", "container")
    assert cmds["volume rm"].rest == "volume"
    assert cmds["image inspect"].rest == "image" and cmds["inspect"].rest == "container"
    assert cmds["container stop"].positionals == ("container",)
    assert ("--network", "network") in cmds["run"].flag_values
    assert "--name" in cmds["run"].value_flags and "--rm" not in cmds["run"].value_flags


def test_manpages_cli_writes_completion(capsys: pytest.CaptureFixture[str]) -> None:
    for shell in SHELLS:
        assert manpages.main(["completion", shell]) == 0
        assert "sdcontainer" in capsys.readouterr().out
    assert manpages.main(["bash-completion"]) == 0
    assert "complete -F _sdcontainer" in capsys.readouterr().out
