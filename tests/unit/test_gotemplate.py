"""Go text/template semantics, as the docker CLI's --format uses them (no box needed)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sdcontainer.cli import gotemplate
from sdcontainer.cli.gotemplate import Template, TemplateError, render, tabwrite

DATA: dict[str, Any] = {
    "Name": "/web", "Id": "0123456789abcdef", "Count": 3, "Ratio": 0.5, "Big": 1e6,
    "State": {"Running": True, "Paused": False, "Pid": 42, "Status": "running"},
    "Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"b": "2", "a": "1"}, "Env": None,
               "Empty": [], "Image": "BusyBox"},
    "Nets": {"n2": {"IP": "10.0.0.3"}, "bridge": {"IP": "10.0.0.2"}},
    "Ports": {"80/tcp": [{"HostPort": "8080"}]},
}


@pytest.mark.parametrize("template, out", [
    # fields, maps, printing
    ("{{.Name}}", "/web"), ("{{ .State.Pid }}", "42"), ("{{.State.Running}}", "true"),
    ("{{.Config.Cmd}}", "[sh -c x]"), ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Nope}}", "<no value>"), ("{{.Nope.Deeper}}", "<no value>"),
    ("{{.ID}}", "0123456789abcdef"), ("{{.Ratio}} {{.Big}}", "0.5 1e+06"),
    ("{{.}}", None), ("{{.Config.Labels.a}}", "1"),
    # range: lists, maps in key order, variables, else, break/continue
    ("{{range .Nets}}{{.IP}} {{end}}", "10.0.0.2 10.0.0.3 "),
    ("{{range $k, $v := .Nets}}{{$k}}={{$v.IP}};{{end}}", "bridge=10.0.0.2;n2=10.0.0.3;"),
    ("{{range $i, $c := .Config.Cmd}}{{if $i}},{{end}}{{$c}}{{end}}", "sh,-c,x"),
    ("{{range $c := .Config.Cmd}}{{$c}}{{end}}", "sh-cx"),
    ("{{range .Config.Empty}}x{{else}}none{{end}}", "none"),
    ("{{range .Config.Env}}x{{else}}nil{{end}}", "nil"),
    ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{break}}{{end}}{{.}}{{end}}", "sh"),
    ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}", "shx"),
    ("{{range .Config.Cmd}}{{$.Name}}{{end}}", "/web/web/web"),
    # if / else if / with
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .State.Paused}}p{{else if gt .State.Pid 10}}big{{else}}small{{end}}", "big"),
    ("{{if .Config.Empty}}y{{else}}n{{end}}", "n"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{with .Nope}}x{{else}}none{{end}}", "none"),
    ("{{with $x := .State.Pid}}{{$x}}{{end}}", "42"),
    # comparisons and logic
    ("{{eq .State.Pid 42}} {{ne .Name \"/web\"}} {{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}}",
     "true false true true false true"),
    ("{{eq .State.Status \"exited\" \"running\"}}", "true"),
    ("{{and .Name .Id}} {{or .Nope \"def\"}} {{not .State.Running}} {{and 1 0 2}}",
     "0123456789abcdef def false 0"),
    # len, index, slice
    ("{{len .Config.Cmd}} {{len .Config.Labels}} {{len .Name}}", "3 2 4"),
    ('{{index .Config.Labels "a"}}[{{index .Config.Labels "zz"}}]', "1[]"),
    ("{{index .Config.Cmd 1}}", "-c"),
    ('{{(index (index .Ports "80/tcp") 0).HostPort}}', "8080"),
    ("{{slice .Name 1 3}}", "we"),
    # variables, assignment, pipelines, parentheses
    ("{{$x := .Name}}{{$x}}", "/web"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{.Name | printf \"%s!\"}}", "/web!"),
    ("{{.Config.Image | lower | upper}}", "BUSYBOX"),
    ("{{printf \"%d-%s-%v\" .Count .Name .State.Running}}", "3-/web-true"),
    ("{{printf \"%5s|%-4d|\" \"ab\" 7}}", "   ab|7   |"),
    # docker's functions
    ("{{json .Config.Labels}}", '{"a":"1","b":"2"}'),
    ("{{json .State}}", '{"Running":true,"Paused":false,"Pid":42,"Status":"running"}'),
    ("{{json .Config.Env}} {{json .Nope}}", "null null"),
    ("{{json \"<&>\"}}", '"<&>"'),
    ('{{join .Config.Cmd ","}}', "sh,-c,x"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{index (split .Name "/") 1}}', "web"),
    ("{{lower .Config.Image}} {{upper .Config.Image}} {{title \"hello big-world\"}}",
     "busybox BUSYBOX Hello Big-World"),
    ("{{truncate .Id 4}} {{truncate \"ab\" 5}}", "0123 ab"),
    ("[{{pad .Name 1 2}}][{{pad \"\" 1 2}}]", "[ /web  ][]"),
    ("{{println .Name .Count}}", "/web 3\n"),
    ("{{print \"a\" 1 2 \"b\"}}", "a1 2b"),
    # text: trim markers, comments, literals
    ("a  {{- .Name -}}  b", "a/webb"),
    ("a {{- /* note */ -}} b", "ab"),
    ("{{/* only a comment */}}", ""),
    ("x\n  {{- .Count}}", "x3"),
    ("{{-3}}", "-3"),
    ("{{`raw\\n`}}{{\"q\\t\"}}{{'a'}}", "raw\\nq\t97"),
    ("{{0x10}} {{1e3}} {{true}} {{nil | print}}", "16 1000 true <nil>"),
    ("{{define \"t\"}}[{{.}}]{{end}}{{template \"t\" .Name}}", "[/web]"),
    ("no actions \\t here", "no actions \\t here"),
])
def test_render(template: str, out: str | None) -> None:
    if out is None:
        assert render(template, DATA).startswith("map[Big:1e+06 Config:map[")
    else:
        assert render(template, DATA) == out


@pytest.mark.parametrize("template, message", [
    ("{{.Name", "unclosed action"),
    ("{{if .Name}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{nosuch .Name}}", 'function "nosuch" not defined'),
    ("{{.Name.Sub}}", "can't evaluate field Sub in type string"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ("{{$nope}}", "undefined variable: $nope"),
    ("{{index .Config.Cmd 9}}", "index out of range: 9"),
    ("{{len .Count}}", "len of type int"),
    ("{{eq .Name 1}}", "incompatible types for comparison"),
    ("{{\"unterminated}}", "unterminated quoted string"),
    ("{{(.Name}}", "unclosed left paren"),
    ("{{join .Count \",\"}}", "expected []string"),
    ("{{.Config.Env.X}}", "nil pointer evaluating interface {}.X"),
])
def test_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(template, DATA)


def test_missing_key_and_nil_print_no_value() -> None:
    assert render("{{.Config.Env}}", DATA) == "<no value>"
    assert render("{{.Config.Env | print}}", DATA) == "<nil>"


def test_header_functions_return_the_title() -> None:
    t = Template("{{.ID}}\t{{upper .Names}}\t{{json .Ports}}\t{{truncate .Image 2}}")
    head = t.execute({"ID": "CONTAINER ID", "Names": "NAMES", "Ports": "PORTS",
                      "Image": "IMAGE"}, gotemplate.HEADER_FUNCS)
    assert head == "CONTAINER ID\tNAMES\tPORTS\tIMAGE"


def test_callable_fields_take_arguments() -> None:
    row = {"Label": lambda name: {"a": "1"}.get(name, "")}
    assert render('{{.Label "a"}}[{{.Label "b"}}]', row) == "1[]"
    with pytest.raises(TemplateError):
        render('{{.Name "x"}}', {"Name": "n"})


def test_tabwriter_like_docker() -> None:
    # minwidth 10, padding 3; the last cell of a line is not padded
    assert tabwrite("CONTAINER ID\tNAMES\nabc\tx\n") == \
        "CONTAINER ID   NAMES\nabc            x\n"
    assert tabwrite("A\tB\nshort\tx\n") == "A         B\nshort     x\n"
    # a line without tabs ends the column block: the widths start again after it
    assert tabwrite("aaaaaaaaaaaaaaa\tb\nnone\nc\td\n") == \
        "aaaaaaaaaaaaaaa   b\nnone\nc         d\n"
    assert tabwrite("a\tb\tc\nlonger-than-ten\tb\tc\n") == \
        "a                 b         c\nlonger-than-ten   b         c\n"


def test_template_parse_once_execute_many() -> None:
    t = Template("{{.N}}")
    assert [t.execute({"N": i}) for i in range(3)] == ["0", "1", "2"]


def test_every_verb_is_found_by_the_lazy_parser() -> None:
    """Each top-level verb of the full parser is in main.VERB_MODULES, so building only
    the module of the verb given finds it (a verb missing there would still work, but
    build every module)."""
    import argparse

    from sdcontainer.cli import main

    full = main.build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    listed = {v for verbs in main.VERB_MODULES.values() for v in verbs}
    missing = set(sub.choices) - listed - set(main.GROUPS)
    assert not missing
    for verb in sorted(listed & set(sub.choices)):
        lazy = main.build_parser(verb)
        lsub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
        assert verb in lsub.choices, verb
    assert main.expand_group(["container", "ls", "-a"]) == ["ps", "-a"]
    assert main.expand_group(["container", "inspect", "x"]) == ["inspect", "--type",
                                                                 "container", "x"]
    assert main.expand_group(["system", "events", "--since", "1m"]) == ["events", "--since",
                                                                        "1m"]


def test_cli_default_socket_is_paths_socket() -> None:
    import os
    import subprocess
    import sys

    code = ("from sdcontainer import paths; from sdcontainer.cli import client; "
            "print(client.socket_path() == str(paths.SOCKET))")
    for env in ({}, {"SDCONTAINER_RUN_DIR": "/tmp/x"}, {"SDCONTAINER_SOCKET": "/tmp/s.sock"}):
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SDCONTAINER_", "DOCKER_"))}
        r = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                           capture_output=True, text=True, check=True)
        assert r.stdout.strip() == "True", env


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, "x\\u00e9", true, null, {"b": -3e2}]}',
                                  "  [] \n", '"s"', "1", "NaN", '{"Version": "0.1.0"}\n'])
def test_fastjson_is_json(text: str) -> None:
    import json

    from sdcontainer.cli import fastjson

    got, want = fastjson.loads(text.encode()), json.loads(text)
    assert repr(got) == repr(want)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "1 2", "{'a': 1}"])
def test_fastjson_errors_are_json_errors(text: str) -> None:
    import json

    from sdcontainer.cli import fastjson

    with pytest.raises(json.JSONDecodeError):
        fastjson.loads(text)
