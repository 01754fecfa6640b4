"""docker's `filters` for container lists, and the CLI's --format templates and tables
(no root, no box)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest

from sdcontainer.api import filters
from sdcontainer.cli import formatting
from sdcontainer.engine.records import Container, ContainerState
from sdcontainer.errors import InvalidArgument, NotFound, SdcError
from sdcontainer.model.spec import ContainerConfig


def make(name: str, n: int, status: str = "running", code: int = 0, image: str = "busybox",
         labels: dict[str, str] | None = None, network: dict[str, Any] | None = None,
         mode: str = "bridge") -> Container:
    return Container(
        id=f"{n:x}" * 64 if n < 16 else f"{n:064x}", name=name,
        created=f"2026-01-01T00:00:{n:02d}Z",
        config=ContainerConfig(image=image, image_id=f"sha256:{image}-id", entrypoint=[],
                               cmd=["true"], labels=labels or {}, network_mode=mode),
        state=ContainerState(status=status, exit_code=code), network=network or {})


@dataclass
class Image:
    id: str


class Images:
    def resolve(self, ref: str) -> Image:
        if ref == "alias-of-busybox":
            return Image("sha256:busybox-id")
        raise NotFound(ref)


class Catalog:
    """The two things container_filter asks of the engine: containers by reference (for
    before/since) and images by reference (for ancestor)."""

    def __init__(self, cs: list[Container]) -> None:
        self.cs = cs
        self.images = Images()

    def get(self, ref: str) -> Container:
        for c in self.cs:
            if ref in (c.name, c.id):
                return c
        raise NotFound(ref)


WEB = make("web", 1, labels={"app": "web", "tier": "front"},
           network={"interfaces": [{"network": "frontnet", "ip": "10.0.0.2", "prefixlen": 24,
                                    "gateway": "10.0.0.1", "mac": "m", "host_ifname": "v"}]})
DB = make("db", 2, status="exited", code=3, image="postgres", labels={"app": "db"})
JOB = make("job-1", 3, status="exited", code=0, mode="host")
NEW = make("new", 4, status="created", image="alpine")
ALL = [WEB, DB, JOB, NEW]


def names(raw: Any) -> list[str]:
    text = raw if raw is None or isinstance(raw, str) else json.dumps(raw)
    keep = filters.container_filter(text, Catalog(ALL))
    return [c.name for c in ALL if keep(c)]


def test_parse_both_shapes() -> None:
    assert filters.parse('{"status": ["running", "exited"]}') == {
        "status": ["running", "exited"]}
    assert filters.parse('{"status": {"running": true, "exited": false}}') == {
        "status": ["running"]}
    assert filters.parse(None) == {} and filters.parse("") == {}


@pytest.mark.parametrize("raw", ["{", "[]", '"x"', '{"nope": ["1"]}', '{"status": "running"}',
                                 '{"status": 1}'])
def test_parse_refuses(raw: str) -> None:
    with pytest.raises(InvalidArgument):
        filters.parse(raw)


def test_no_filters_keep_everything() -> None:
    assert names(None) == ["web", "db", "job-1", "new"]


def test_status() -> None:
    assert names({"status": ["running"]}) == ["web"]
    assert names({"status": ["exited", "created"]}) == ["db", "job-1", "new"]
    with pytest.raises(InvalidArgument):
        names({"status": ["sleeping"]})


def test_name_is_an_unanchored_regex() -> None:
    assert names({"name": ["b"]}) == ["web", "db", "job-1"]
    assert names({"name": ["^/?job-[0-9]$"]}) == ["job-1"]
    assert names({"name": ["/web"]}) == ["web"]
    with pytest.raises(InvalidArgument):
        names({"name": ["("]})


def test_id_prefix() -> None:
    assert names({"id": ["2222"]}) == ["db"]
    assert names({"id": ["1", "3"]}) == ["web", "job-1"]


def test_labels() -> None:
    assert names({"label": ["app"]}) == ["web", "db"]
    assert names({"label": ["app=web"]}) == ["web"]
    assert names({"label": ["app=web", "tier=back"]}) == []
    assert names({"label": {"tier": True}}) == ["web"]


def test_labels_match() -> None:
    assert filters.labels_match({"a": "1", "b": ""}, ["a", "b=", "a=1"])
    assert not filters.labels_match({"a": "1"}, ["a=2"])
    assert not filters.labels_match({}, ["a"])
    assert filters.labels_match({}, [])


def test_ancestor_by_name_or_resolved_id() -> None:
    assert names({"ancestor": ["postgres"]}) == ["db"]
    assert names({"ancestor": ["alias-of-busybox"]}) == ["web", "job-1"]
    assert names({"ancestor": ["no-such-image"]}) == []


def test_exited() -> None:
    assert names({"exited": ["3"]}) == ["db"]
    assert names({"exited": ["0"]}) == ["job-1"]  # a running container has no exit code
    with pytest.raises(InvalidArgument):
        names({"exited": ["x"]})


def test_network() -> None:
    assert names({"network": ["frontnet"]}) == ["web"]
    assert names({"network": ["host"]}) == ["job-1"]
    assert names({"network": ["bridge"]}) == ["web", "db", "new"]


def test_before_and_since() -> None:
    assert names({"before": ["job-1"]}) == ["web", "db"]
    assert names({"since": ["db"]}) == ["job-1", "new"]
    assert names({"since": ["web"], "before": ["new"]}) == ["db", "job-1"]
    with pytest.raises(NotFound):
        names({"before": ["ghost"]})


def test_filters_combine_with_and() -> None:
    assert names({"status": ["exited"], "label": ["app"]}) == ["db"]


def test_wants_stopped() -> None:
    assert not filters.wants_stopped(None)
    assert not filters.wants_stopped('{"status": ["running"]}')
    assert filters.wants_stopped('{"status": ["exited"]}')
    assert filters.wants_stopped('{"exited": ["0"]}')


# -- formatting ------------------------------------------------------------------------

OBJ = {"Name": "/web", "State": {"Running": True, "Pid": 42, "Status": "running"},
       "Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"a": "1", "b": "2"}, "Env": None}}


@pytest.mark.parametrize("template, out", [
    ("{{.Name}}", "/web"),
    ("{{ .State.Pid }}", "42"),
    ("{{.State.Running}}", "true"),
    ("{{.Config.Cmd}}", "[sh -c x]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Env}}", "<no value>"),
    ("{{.Nope.Deeper}}", "<no value>"),
    ("{{json .State}}", '{"Running":true,"Pid":42,"Status":"running"}'),
    ("{{json .Config.Env}}", "null"),
    ("{{.Name}}\\t{{.State.Status}}", "/web\trunning"),
    ("a\\nb", "a\nb"),
    ("no fields", "no fields"),
])
def test_render(template: str, out: str) -> None:
    assert formatting.render(template, OBJ) == out


def test_render_field_of_a_string_is_an_error() -> None:
    with pytest.raises(SdcError, match="can't evaluate field Sub in type string"):
        formatting.render("{{.Name.Sub}}", OBJ)


def test_render_json() -> None:
    assert json.loads(formatting.render("json", OBJ)) == OBJ


def test_lookup() -> None:
    assert formatting.lookup(OBJ, ".State.Pid") == 42
    assert formatting.lookup(OBJ, "") == OBJ
    assert formatting.lookup([1], ".X") is None


def test_table_pads_like_tabwriter() -> None:
    out = formatting.table(["ID", "NAME"], [["abc", "web"], ["a", "a-long-name"]])
    assert out.splitlines() == ["ID    NAME", "abc   web", "a     a-long-name"]
    assert formatting.table(["A", "B"], [["x", ""]]).splitlines()[1] == "x"  # no trailing


@pytest.mark.parametrize("n, text", [(0, "0B"), (999, "999B"), (1000, "1kB"),
                                     (1_500_000, "1.5MB"), (2_340_000_000, "2.34GB"),
                                     (512_000, "512kB")])
def test_human_size(n: int, text: str) -> None:
    assert formatting.human_size(n) == text


def test_ago() -> None:
    assert formatting.ago(time.time()) == "Less than a second ago"
    assert formatting.ago(time.time() - 90) == "About a minute ago"
    assert formatting.ago(time.time() - 3 * 3600) == "3 hours ago"


def test_ps_row() -> None:
    c = {"Id": "f" * 64, "Image": "busybox", "Command": "sh -c 'a very long command line'",
         "Created": time.time() - 5, "State": "running", "Status": "Up 5 seconds",
         "Names": ["/web"], "Labels": {"a": "1"}, "Ports": [
             {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"}],
         "Mounts": [{"Name": "data", "Destination": "/data"}],
         "NetworkSettings": {"Networks": {"bridge": {}}}}
    row = formatting.ps_row(c, no_trunc=False)
    assert row["ID"] == "f" * 12 and row["Names"] == "web" and row["Labels"] == "a=1"
    assert row["Command"] == json.dumps("sh -c 'a very long …", ensure_ascii=False)
    assert row["Ports"] == "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"
    assert row["Mounts"] == "data" and row["Networks"] == "bridge"
    assert row["RunningFor"] == "5 seconds ago"
    full = formatting.ps_row(c, no_trunc=True)
    assert full["ID"] == "f" * 64 and "line" in full["Command"]


def test_quote_command() -> None:
    assert formatting.quote_command(["sh", "-c", "echo 'hi' $X"]) == \
        "sh -c 'echo '\"'\"'hi'\"'\"' $X'"


def test_each_reports_failures_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    done: list[str] = []

    def act(n: str) -> None:
        if n == "bad":
            raise NotFound(f"no such container: {n}")
        done.append(n)

    assert formatting.each(["a", "bad", "b"], act) == 1
    out, err = capsys.readouterr()
    assert done == ["a", "b"] and out == "a\nb\n"
    assert err == "Error response from daemon: no such container: bad\n"
    assert formatting.each(["a"], act, echo=False) == 0
    assert capsys.readouterr().out == ""


def test_print_inspected(capsys: pytest.CaptureFixture[str]) -> None:
    formatting.print_inspected([OBJ, OBJ], "{{.State.Pid}}")
    assert capsys.readouterr().out == "42\n42\n"
    formatting.print_inspected([OBJ], None)
    assert json.loads(capsys.readouterr().out) == [OBJ]


# -- events and stats ---------------------------------------------------------------------

EVENT = {"Type": "container", "Action": "exec_start: sh", "id": "abc123", "from": "busybox",
         "scope": "local", "timeNano": 1_700_000_000_123_456_789,
         "Actor": {"ID": "abc123", "Attributes": {"name": "web", "image": "busybox",
                                                  "tier": "front"}}}


@pytest.mark.parametrize("raw, kept", [
    (None, True), ('{"container": ["web"]}', True), ('{"container": ["abc"]}', True),
    ('{"container": ["db", "web"]}', True), ('{"container": ["db"]}', False),
    ('{"type": ["network"]}', False), ('{"event": ["exec_start"]}', True),
    ('{"event": ["die"]}', False), ('{"label": ["tier=front"]}', True),
    ('{"label": ["tier=back"]}', False), ('{"image": ["busybox"]}', True),
    ('{"container": ["web"], "event": ["die"]}', False),
])
def test_event_filter(raw: str | None, kept: bool) -> None:
    assert filters.event_filter(raw)(EVENT) is kept


def test_event_filter_and_time_errors() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'nonsense'"):
        filters.event_filter('{"nonsense": ["1"]}')
    assert filters.event_time("1700000000.5") == 1_700_000_000_500_000_000
    assert filters.event_time("1700000000") == 1_700_000_000_000_000_000
    assert filters.event_time(None) is None
    with pytest.raises(InvalidArgument):
        filters.event_time("yesterday")


def test_event_line_is_dockers(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdcontainer.cli.syscmds import event_line

    for tz, stamp in (("UTC", "2023-11-14T22:13:20.123456789Z"),
                      ("Europe/Paris", "2023-11-14T23:13:20.123456789+01:00")):
        monkeypatch.setenv("TZ", tz)
        time.tzset()
        assert event_line(EVENT) == (f"{stamp} container exec_start: sh abc123 "
                                     "(image=busybox, name=web, tier=front)")
    monkeypatch.undo()
    time.tzset()


def test_stats_row_computes_like_docker() -> None:
    from sdcontainer.cli.syscmds import stats_row

    s = {"id": "f" * 64, "name": "/web", "pids_stats": {"current": 3},
         "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}, "online_cpus": 2,
                       "system_cpu_usage": 20_000_000_000},
         "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000},
                          "system_cpu_usage": 18_000_000_000},
         "memory_stats": {"usage": 10 * 2**20, "limit": 64 * 2**20,
                          "stats": {"total_inactive_file": 2 * 2**20}},
         "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0}},
         "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}]}}
    row = stats_row(s, None, no_trunc=False)
    assert row == {"Container": "f" * 12, "ID": "f" * 12, "Name": "web", "CPUPerc": "50.00%",
                   "MemUsage": "8MiB / 64MiB", "MemPerc": "12.50%", "NetIO": "1.5kB / 0B",
                   "BlockIO": "4.1kB / 0B", "PIDs": "3"}
    idle = dict(s, cpu_stats=s["precpu_stats"])
    assert stats_row(idle, None, no_trunc=False)["CPUPerc"] == "0.00%"


def test_image_rows_as_docker_lists_them() -> None:
    from sdcontainer.cli.imagecmds import image_refs

    assert image_refs({"RepoTags": ["a/b:1", "a/b:2"], "RepoDigests": ["a/b@sha256:d"]}) == \
        [("a/b", "1", "sha256:d"), ("a/b", "2", "sha256:d")]
    # Pulled by digest: no tag, the repository still shows.
    assert image_refs({"RepoTags": [], "RepoDigests": ["r:5000/x@sha256:e"]}) == \
        [("r:5000/x", "<none>", "sha256:e")]
    assert image_refs({"RepoTags": None, "RepoDigests": None}) == [("<none>", "<none>", "<none>")]
