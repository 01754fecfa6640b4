"""The generator against golden files, as Quadlet tests its own (no root, no systemd).

Each tests/unit/generator/CASE.container is generated alone, as if it were
/etc/sdcontainer/containers/CASE.container.  A valid file must produce exactly the
unit in CASE.service (byte for byte) and the files listed in CASE.layout (when
there is no CASE.layout: sdcontainer-CASE.service alone).  A bad file must produce
no file at all and exactly the journal line in CASE.error.

`SDC_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_generator_golden.py` rewrites
the golden files from what the generator does now; review the diff before committing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sdcontainer.systemd import generator

CASES = Path(__file__).parent / "generator"
ETC = "/etc/sdcontainer/containers"  # where the goldens pretend the files lie
CLI = "/usr/bin/sdcontainer"
UPDATE = os.environ.get("SDC_UPDATE_GOLDEN") == "1"


class Run:
    """What one generator run left: its output files and its log lines."""

    def __init__(self, out: Path, logged: list[str]) -> None:
        self.out = out
        self.logged = logged

    def layout(self) -> list[str]:
        """Every file the run wrote, relative to the output directory (symlinks with
        their targets), sorted."""
        rows = []
        for p in sorted(self.out.rglob("*")):
            rel = p.relative_to(self.out).as_posix()
            if p.is_symlink():
                rows.append(f"{rel} -> {os.readlink(p)}")
            elif p.is_file():
                rows.append(rel)
        return rows


@pytest.fixture
def generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the generator over the given .container files (name -> bytes)."""
    logged: list[str] = []
    # The goldens name the packaged command, not this checkout's venv.
    monkeypatch.setattr(generator, "cli_path", lambda: CLI)
    # log() writes to the journal socket or the kmsg: a unit test must not write to the
    # host's journal, so the lines are collected here instead (their text is the same).
    monkeypatch.setattr(generator, "log", logged.append)
    count = 0

    def run(files: dict[str, bytes]) -> Run:
        nonlocal count
        count += 1
        base = tmp_path / f"run{count}"
        search = base / "containers"
        search.mkdir(parents=True)
        for name, data in files.items():
            (search / name).write_bytes(data)
        out = base / "out"
        out.mkdir()
        first = len(logged)
        generator.generate(out, (search,))

        def normal(text: str) -> str:
            return text.replace(str(search), ETC)

        for f in out.rglob("*.service"):
            if not f.is_symlink():
                f.write_text(normal(f.read_text()))
        return Run(out, [normal(line) for line in logged[first:]])

    return run


def case_names() -> list[str]:
    return sorted(p.stem for p in CASES.glob("*.container"))


def test_there_are_enough_cases() -> None:
    names = case_names()
    assert len(names) >= 30, names
    # Every golden belongs to an input: a renamed case must not leave an old golden behind.
    for p in CASES.iterdir():
        assert p.stem in names and p.suffix in (".container", ".service", ".layout", ".error"), p


def compare(path: Path, actual: str | None) -> None:
    """PATH holds ACTUAL (None: PATH must not exist); rewritten instead under UPDATE."""
    if UPDATE:
        if actual is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(actual, encoding="utf-8")
        return
    if actual is None:
        assert not path.exists(), f"{path.name} is a golden of nothing: remove it"
        return
    assert path.exists(), f"no golden {path.name}: run with SDC_UPDATE_GOLDEN=1 and review"
    assert actual.encode() == path.read_bytes(), f"{path.name} differs from the golden"


@pytest.mark.parametrize("case", case_names())
def test_golden(generate, case: str) -> None:  # type: ignore[no-untyped-def]
    src = CASES / f"{case}.container"
    run = generate({src.name: src.read_bytes()})
    layout = run.layout()
    service, error, layout_file = (CASES / f"{case}{s}" for s in (".service", ".error",
                                                                   ".layout"))
    if run.logged:
        assert layout == [], ("a bad file still produced files", layout)
        assert len(run.logged) == 1, run.logged
        compare(error, run.logged[0] + "\n")
        compare(service, None)
        compare(layout_file, None)
        return
    units = [u for u in layout if u.endswith(".service") and "/" not in u]
    assert len(units) == 1, layout
    compare(service, (run.out / units[0]).read_text())
    compare(error, None)
    default = [f"sdcontainer-{case}.service"]
    compare(layout_file, None if layout == default else "\n".join(layout) + "\n")
    if not UPDATE and not layout_file.exists():
        assert layout == default, layout


def test_bad_files_all_end_in_no_unit_generated() -> None:
    for p in CASES.glob("*.error"):
        line = p.read_text()
        assert line.startswith(f"{ETC}/{p.stem}.container: ") and line.endswith(
            "; no unit generated\n"), (p.name, line)


# -- what one file at a time cannot show ------------------------------------------------

def test_vendor_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "cli_path", lambda: CLI)
    logged: list[str] = []
    monkeypatch.setattr(generator, "log", logged.append)
    etc, usr, out = tmp_path / "etc", tmp_path / "usr", tmp_path / "out"
    for d in (etc, usr, out):
        d.mkdir()
    (etc / "web.container").write_text('image = "etc-image"\n')
    (usr / "web.container").write_text('image = "vendor-image"\n')
    (usr / "db.container").write_text('image = "vendor-db"\n')
    assert generator.generate(out, (etc, usr)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sdcontainer-db.service",
                                                     "sdcontainer-web.service"]
    assert "(etc-image)" in (out / "sdcontainer-web.service").read_text()
    assert f"SourcePath={usr}/db.container" in (out / "sdcontainer-db.service").read_text()
    assert logged == []


def test_two_files_declaring_one_name(generate) -> None:  # type: ignore[no-untyped-def]
    run = generate({"a.container": b'image = "busybox"\nname = "same"\n',
                    "b.container": b'image = "busybox"\nname = "same"\n'})
    assert run.layout() == ["sdcontainer-same.service"]
    assert f"SourcePath={ETC}/a.container" in (run.out / "sdcontainer-same.service").read_text()
    assert run.logged == [f"{ETC}/b.container: container name 'same' is also declared in "
                          f"{ETC}/a.container; no unit generated"]


def test_one_bad_file_does_not_stop_the_others(generate) -> None:  # type: ignore[no-untyped-def]
    run = generate({"bad.container": b'image = "busybox"\nnope = 1\n',
                    "good.container": b'image = "busybox"\n'})
    assert run.layout() == ["sdcontainer-good.service"]
    assert run.logged == [f"{ETC}/bad.container: unknown key 'nope'; no unit generated"]


def test_main_counts_arguments(tmp_path: Path) -> None:
    assert generator.main([]) == 1
    assert generator.main([str(tmp_path), str(tmp_path)]) == 1


# -- quoting, checked against systemd's own unquoting rules ------------------------------

def systemd_words(line: str) -> list[str]:
    """LINE split and unquoted as systemd does for ExecStart= (systemd.syntax(7),
    systemd.service(5)): double-quoted words with C escapes, %% and $$ undoubled.
    Only what quote() produces is understood; anything else fails the test."""
    words = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', line):
        quoted, bare = m.group(1), m.group(2)
        text = quoted if quoted is not None else bare
        assert text is not None
        if bare is not None:
            assert re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", bare), bare
        out, i = [], 0
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1]
                if nxt == "x":
                    out.append(chr(int(text[i + 2:i + 4], 16)))
                    i += 4
                    continue
                assert nxt in '\\"', text
                out.append(nxt)
                i += 2
            elif ch in "%$":
                assert text[i + 1] == ch, f"a lone {ch} in {text!r} would be expanded"
                out.append(ch)
                i += 2
            else:
                out.append(ch)
                i += 1
        words.append("".join(out))
    return words


@pytest.mark.parametrize("arg", [
    "plain", "", " ", "a b", "100%", "%h", "%%", "$HOME", "${X}", "$$", "'", '"', "\\",
    "\\n", "a\nb", "tab\there", ";", "\r", "\x7f", "\x01", "ä ö ü", "emoji 🐳", "--flag=value",
    'mix "%$\\\n\'', "trailing\\", "=", "a;b", "a#b", "{}", "*", "~",
])
def test_quote_round_trips(arg: str) -> None:
    assert systemd_words(generator.command_line(["x", arg, "y"])) == ["x", arg, "y"]


def test_quote_refuses_nul() -> None:
    with pytest.raises(generator.Invalid):
        generator.quote("a\0b")


def test_every_key_has_a_case() -> None:
    """Each key the generator accepts appears in at least one valid case."""
    valid = [CASES / f"{n}.container" for n in case_names()
             if (CASES / f"{n}.service").exists() or UPDATE]
    text = "\n".join(p.read_text(errors="replace") for p in valid)
    keys = [*generator.FLAGS, *generator.OTHER_KEYS, *generator.SERVICE_KEYS]
    missing = [k for k in keys if k != "service" and not re.search(
        rf'^\s*"?{re.escape(k)}"?\s*=', text, re.M)]
    assert not missing, missing
    assert "[service]" in text


def test_cases_are_independent_of_the_checkout() -> None:
    for p in CASES.glob("*.service"):
        text = p.read_text()
        assert str(Path(__file__).parents[2]) not in text, p
