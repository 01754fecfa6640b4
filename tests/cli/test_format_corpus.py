"""--format against the real docker CLI: the same template, the same daemon, the same bytes.

The corpus is templates people use (docker's docs, READMEs, scripts): inspect of
containers, images and networks, ps, images, network ls, info and version.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.api.apiutil import docker
from tests.integration.conftest import sdc

C = "{container}"
CORPUS: list[tuple[str, ...]] = [
    # container inspect
    ("inspect", "-f", "{{.Name}}", C),
    ("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", C),
    ("inspect", "--format", "{{.State.Pid}}", C),
    ("inspect", "-f", "{{.Id}}", C),
    ("inspect", "-f", "{{.ID}}", C),
    ("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", C),
    ("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}"
     "{{\"\\n\"}}{{end}}", C),
    ("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}", C),
    ("inspect", "-f", "{{json .Config.Labels}}", C),
    ("inspect", "-f", '{{index .Config.Labels "com.example.role"}}', C),
    ("inspect", "-f", '[{{index .Config.Labels "no.such.label"}}]', C),
    ("inspect", "-f", "{{.Config.Labels}}", C),
    ("inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", C),
    ("inspect", "-f", '{{join .Config.Cmd " "}}', C),
    ("inspect", "-f", "{{json .Config.Cmd}}", C),
    ("inspect", "-f", "{{.Config.Cmd}}", C),
    ("inspect", "-f", "{{.HostConfig.Memory}}", C),
    ("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", C),
    ("inspect", "-f", "{{if .State.Running}}running{{else}}stopped{{end}}", C),
    ("inspect", "-f", "{{.Config.Image}}", C),
    ("inspect", "-f", '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', C),
    ("inspect", "-f", "{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> "
     "{{(index $conf 0).HostPort}} {{end}}", C),
    ("inspect", "-f", "{{json .NetworkSettings.Ports}}", C),
    ("inspect", "-f", "{{.NetworkSettings.Networks.{network}.IPAddress}}", C),
    ("inspect", "-f", "{{with .State}}{{.Status}} {{.ExitCode}}{{end}}", C),
    ("inspect", "-f", "{{len .Config.Env}}", C),
    ("inspect", "-f", "{{upper .State.Status}} {{title .State.Status}} {{lower .Config.Image}}",
     C),
    ("inspect", "-f", "{{truncate .Id 12}}|{{pad .State.Status 2 3}}|", C),
    ("inspect", "-f", '{{split .Name "-"}}', C),
    ("inspect", "-f", "  {{- /* a comment */ -}}  {{ .Name -}}  !", C),
    ("inspect", "-f", "{{$name := .Name}}{{range .Config.Env}}{{$name}}:{{.}};{{end}}", C),
    ("inspect", "-f", '{{if eq .State.Status "running"}}up{{else if eq .State.Status "exited"}}'
     "down{{else}}other{{end}}", C),
    ("inspect", "-f", "{{if and .State.Running (not .State.Paused)}}ok{{end}}", C),
    ("inspect", "-f", '{{or .Config.Domainname "none"}}', C),
    ("inspect", "-f", "{{.HostConfig.NetworkMode}}", C),
    ("inspect", "-f", '{{printf "%s has %d vars" .Name (len .Config.Env)}}', C),
    ("inspect", "-f", "{{range $i, $e := .Config.Cmd}}{{if $i}},{{end}}{{$e}}{{end}}", C),
    ("inspect", "-f", "{{.Config.Hostname}} {{.Path}} {{.Args}}", C),
    ("inspect", "-f", "{{if gt (len .Config.Env) 1}}many{{end}} {{ne .State.Pid 0}}", C),
    ("inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "{exited}"),
    ("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}", C),
    ("inspect", "-f", "{{$.Name}}{{with .Config}}{{$.Name}}{{.Image}}{{end}}", C),
    # image inspect
    ("inspect", "-f", "{{.Id}}", "busybox"),
    ("image", "inspect", "-f", "{{.RepoTags}} {{json .RepoTags}} {{index .RepoTags 0}}",
     "busybox"),
    ("image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{.Size}}", "busybox"),
    # network inspect
    ("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}}", "{network}"),
    ("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
     "{network}"),
    ("network", "inspect", "-f", "{{json .Labels}} {{.Labels}}", "{network}"),
    ("network", "inspect", "-f", "{{range $id, $c := .Containers}}{{$c.Name}} "
     "{{$c.IPv4Address}}{{end}}", "{network}"),
    # ps
    ("ps", "--filter", "name={container}", "--format", "{{.Names}}"),
    ("ps", "--filter", "name={container}", "--format", "table {{.ID}}\t{{.Names}}"),
    ("ps", "--filter", "name={container}", "--format", "table {{.ID}}\\t{{.Names}}"),
    ("ps", "-a", "--filter", "name={prefix}", "--format",
     "table {{.Names}}\\t{{.Image}}\\t{{.State}}"),
    ("ps", "--filter", "name={container}", "--format", "{{.ID}}: {{.Command}}"),
    ("ps", "--filter", "name={container}", "--format", '{{.Label "com.example.role"}}'),
    ("ps", "--filter", "name={container}", "--format", "{{.Networks}} {{.Labels}}"),
    ("ps", "--filter", "name={container}", "--format", "{{.Ports}}"),
    ("ps", "--filter", "name={container}", "--format",
     "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.Names}}"),
    ("ps", "--filter", "name={container}", "--format", "{{json .Names}} {{.Mounts}}"),
    ("ps", "-a", "--filter", "status=exited", "--filter", "name={prefix}", "--format",
     "{{.Names}} {{.State}}"),
    ("ps", "-a", "--filter", "label=com.example.role=web", "--format", "{{.Names}}"),
    ("container", "ls", "--filter", "name={container}", "--format", "{{.Names}}"),
    ("ps", "--filter", "name={container}", "-q"),
    # images
    # Other tests leave images that have several repositories: docker's CLI lists those
    # in a random order (a Go map), so these list busybox alone.
    ("images", "busybox", "--format", "{{.Repository}}:{{.Tag}}"),
    ("images", "busybox", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}"),
    ("images", "busybox", "--format", "{{.ID}} {{json .Repository}}"),
    ("image", "ls", "busybox", "--format", "{{.Repository}}"),
    ("images", "--filter", "reference=busybox", "--format", "{{.Repository}}:{{.Tag}}"),
    ("images", "-q", "--filter", "dangling=false", "busybox"),
    # networks
    ("network", "ls", "--filter", "name={network}", "--format", "{{.Name}} {{.Driver}}"),
    ("network", "ls", "--filter", "name={network}", "--format",
     "table {{.Name}}\\t{{.Driver}}\\t{{.Scope}}"),
    ("network", "ls", "--filter", "name={network}", "--format", "{{.ID}}"),
    ("network", "ls", "--filter", "name={network}", "-q"),
    ("network", "ls", "--filter", "label=tier=front", "--format", "{{.Name}}"),
    ("network", "ls", "--filter", "name={network}"),
    ("network", "ls", "--filter", "name={network}", "--format", "json"),
    ("network", "ls", "--filter", "name={network}", "--format",
     "{{.CreatedAt}} {{.Labels}} {{.Label \"tier\"}} {{.Internal}} {{.IPv6}}"),
    ("network", "ls", "--filter", "name={network}", "--no-trunc", "--format", "{{.ID}}"),
    # info and version
    ("info", "--format", "{{.ServerVersion}} {{.CgroupDriver}} {{.NCPU}}"),
    ("info", "-f", "{{.OperatingSystem}} {{.KernelVersion}} {{.Containers}}"),
    ("system", "info", "--format", "{{json .CgroupDriver}}"),
    ("version", "--format", "{{.Server.Version}}"),
    ("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}}"),
    ("version", "-f", "{{.Server.MinAPIVersion}} {{.Server.KernelVersion}}"),
]


@pytest.fixture(scope="module")
def corpus_objects(busybox: str) -> Iterator[dict[str, str]]:
    prefix = f"fc{uuid.uuid4().hex[:6]}"
    names = {"prefix": prefix, "container": f"{prefix}-web", "exited": f"{prefix}-exited",
             "network": f"{prefix}net"}
    sdc("network", "create", "--label", "tier=front", "--subnet", "10.231.7.0/24",
        names["network"], check=True)
    sdc("run", "-d", "--name", names["container"], "--network", names["network"],
        "--label", "com.example.role=web", "-e", "A=1", "-e", "B=two", "-m", "64m",
        "-p", "18080:80", busybox, "sleep", "300", check=True)
    sdc("run", "--name", names["exited"], busybox, "sh", "-c", "exit 3")
    yield names
    sdc("rm", "-f", names["container"], names["exited"])
    sdc("network", "rm", names["network"])


def test_format_corpus_matches_docker(corpus_objects: dict[str, str]) -> None:
    assert len(CORPUS) >= 40
    mismatches = []
    for case in CORPUS:
        args = [a.format(**corpus_objects) if "{{" not in a else
                a.replace("{network}", corpus_objects["network"]) for a in case]
        theirs, ours = docker(*args), sdc(*args)
        assert theirs.returncode == 0, (args, theirs.stderr)
        if (ours.returncode, ours.stdout) != (0, theirs.stdout):
            mismatches.append(f"{args}:\n docker: {theirs.stdout!r}\n ours:   {ours.stdout!r}"
                              f" {ours.stderr.strip()}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("args", [("ps", "--format", "{{.Names"),
                                  ("inspect", "-f", "{{if .Name}}", "busybox"),
                                  ("images", "--format", "{{nosuchfunc .ID}}"),
                                  ("ps", "--filter", "nonsense")])
def test_bad_template_is_one_line_and_fails(busybox: str, args: tuple[str, ...]) -> None:
    r = sdc(*args)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""
