"""The pure parts of the builder: Dockerfile parsing, word expansion, .dockerignore,
and overlay upper directories as OCI layers (no systemd needed)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from sdcontainer.errors import InvalidArgument
from sdcontainer.images.build import words
from sdcontainer.images.build.context import Ignore
from sdcontainer.images.build.dockerfile import parse
from sdcontainer.images.layerdiff import MergedTree, changes, write_layer

DOCKERFILE = """# syntax=docker/dockerfile:1
# escape=`
ARG BASE=busybox
FROM ${BASE} AS build
# a comment
RUN echo one `
    # a comment inside a continuation
    two
COPY --chown=1:2 --chmod=640 ["a b", "/dst/"]
FROM scratch
COPY --from=build /x /y
CMD ["sh"]
"""


def test_dockerfile_parser() -> None:
    df = parse(DOCKERFILE)
    assert df.escape == "`"
    assert [i.rest for i in df.global_args] == ["BASE=busybox"]
    assert [(s.base, s.name) for s in df.stages] == [("${BASE}", "build"), ("scratch", "")]
    run, copy = df.stages[0].instructions
    assert (run.cmd, run.rest, run.line) == ("RUN", "echo one     two", 6)
    assert copy.flags == {"chown": "1:2", "chmod": "640"} and copy.json_args == ["a b", "/dst/"]
    assert df.stages[1].instructions[0].flags == {"from": "build"}
    assert df.stage_index("BUILD") == 0
    for bad, what in (("FROM a\nFROBNICATE x\n", "line 2: unknown instruction"),
                      ("RUN x\n", "line 1: RUN before the first FROM"),
                      ("FROM a\nRUN --mount=type=cache,target=/x true\n", "line 2: unknown flag"),
                      ("FROM a\nRUN <<EOF\nx\nEOF\n", "line 2: heredocs")):
        with pytest.raises(InvalidArgument, match=what):
            parse(bad)


def test_words() -> None:
    env = {"A": "x y", "E": ""}
    assert words.split('k="$A" ${A:-d} ${E:-def} ${E:+alt} ${A:+alt} \'$A\' \\$A', env) == [
        "k=x y", "x y", "def", "alt", "$A", "$A"]
    assert words.one("${NOPE:-/srv}/${A}", env) == "/srv/x y"
    with pytest.raises(InvalidArgument, match="unterminated"):
        words.split('"open', env)


def test_dockerignore_rules() -> None:
    ig = Ignore("# comment\n*.log\n**/tmp\n/build\n!build/keep.txt\nsecret?\n")
    assert ig.excluded("a.log") and not ig.excluded("dir/a.log")  # * stays in one component
    assert ig.excluded("x/y/tmp") and ig.excluded("tmp/file")
    assert ig.excluded("build/out.o") and not ig.excluded("build/keep.txt")
    assert ig.excluded("secret1") and not ig.excluded("secret12")
    assert not ig.excluded("src/main.c")


def test_upper_dir_as_layer_and_changes(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc", lower / "var/cache", upper / "etc", upper / "var/cache"):
        d.mkdir(parents=True)
    (lower / "etc/passwd").write_text("root\n")
    (lower / "etc/gone").write_text("x")
    (lower / "var/cache/old").write_text("x")
    (upper / "etc/passwd").write_text("root\nuser\n")
    (upper / "etc/new").write_text("new")
    os.link(upper / "etc/new", upper / "etc/new-link")
    if os.geteuid() != 0:
        pytest.skip("whiteouts (device nodes) and trusted.* xattrs need root")
    os.mknod(upper / "etc/gone", 0o600 | 0o020000, 0)  # an overlay whiteout
    os.setxattr(upper / "var/cache", "trusted.overlay.opaque", b"y")
    out = io.BytesIO()
    write_layer(upper, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        names = [(m.name, m.type) for m in tf]
    assert [n for n, _ in names] == ["etc", "etc/.wh.gone", "etc/new", "etc/new-link",
                                     "etc/passwd", "var", "var/cache",
                                     "var/cache/.wh..wh..opq"]
    assert dict(names)["etc/new-link"] == tarfile.LNKTYPE
    again = io.BytesIO()
    write_layer(upper, again)
    assert again.getvalue() == out.getvalue()  # the same tree, the same bytes
    found = {(c.path, c.kind) for c in changes(upper, MergedTree([lower]))}
    assert found == {("/etc", 0), ("/etc/gone", 2), ("/etc/new", 1), ("/etc/new-link", 1),
                     ("/etc/passwd", 0), ("/var", 0), ("/var/cache", 0),
                     ("/var/cache/old", 2)}
    merged = MergedTree([lower, upper])
    assert sorted(merged.listdir("etc")) == ["new", "new-link", "passwd"]
    assert merged.listdir("var/cache") == {}
