"""The one flag table (issue 14): the CLI's parser, the generator and the man pages take
their run/create flags from it, and a flag's value goes CLI -> create body -> the
engine's request -> the record -> inspect unchanged (issue 18)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sdcontainer.api.containers import parse_create
from sdcontainer.cli.options import add_container_flags, create_body
from sdcontainer.engine.records import Container
from sdcontainer.engine.views import inspect
from sdcontainer.errors import InvalidArgument
from sdcontainer.model.spec import ContainerConfig
from sdcontainer.systemd import generator
from sdcontainer.util import runflags


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    add_container_flags(p)
    return p


def test_every_table_flag_is_in_the_parser_and_every_key_in_the_generator() -> None:
    options = {o for a in parser()._actions for o in a.option_strings}
    for flag in runflags.FLAGS:
        assert set(flag.names) <= options, flag.names
    table = {k: (f.toml_types, f.unit_flag) for k, f in runflags.by_key().items()}
    assert table == generator.FLAGS


def test_what_the_generator_writes_the_cli_parses() -> None:
    cases = Path(__file__).parent / "generator"
    for case in ("everything", "namespaces-resources", "uts-security-device"):
        data = generator.tomllib.loads((cases / f"{case}.container").read_text())
        c = generator.parse(data, case)
        ns = parser().parse_args([*c.flags, c.image, *c.command])
        create_body(ns)  # every flag translates


@pytest.mark.parametrize("text, error", [
    ('publish = [true]', "publish entries must be strings"),
    ('dns = [false]', "dns entries must be strings"),
    ('cpus = true', "key 'cpus' has the wrong type (bool)"),
    ('shm-size = true', "key 'shm-size' has the wrong type (bool)"),
])
def test_generator_refuses_bools_where_values_go(text: str, error: str) -> None:
    data = generator.tomllib.loads(f'image = "busybox"\n{text}\n')
    with pytest.raises(generator.Invalid) as e:
        generator.parse(data, "x")
    assert str(e.value) == error


ARGS = ["--name", "web", "-v", "/srv:/data:ro,rprivate", "--tmpfs", "/scratch:size=1m",
        "-p", "127.0.0.1:8080:80", "--expose", "53/udp", "--dns", "10.0.0.53",
        "--dns-search", "example.test", "--dns-option", "ndots:2", "--add-host", "db:10.0.0.5",
        "-c", "512", "--cpuset-cpus", "0", "--shm-size", "8m", "--ipc", "shareable",
        "--uts", "host", "--cgroupns", "private", "--memory-swap", "-1",
        "--cgroup-parent", "test-pod1.slice", "--pid", "host",
        "--log-driver", "journald", "--log-opt", "tag=x", "--runtime", "sdcontainer",
        "--isolation", "default", "--volume-driver", "local", "--restart", "on-failure:2",
        "busybox", "sleep", "1"]


def test_flags_to_body_to_request_to_inspect() -> None:
    body = create_body(parser().parse_args(ARGS))
    req = parse_create(body)
    assert (req.cpu_shares, req.cpuset_cpus, req.shm_size) == (512, "0", 8 * 1024 * 1024)
    assert (req.ipc_mode, req.uts_mode, req.cgroupns_mode) == ("shareable", "host", "private")
    assert (req.log_driver, req.log_opts, req.memory_swap) == ("journald", {"tag": "x"}, -1)
    assert req.exposed_ports == ["53/udp", "80/tcp"]
    # The record the engine keeps from it (as Engine.create fills it) shows as given.
    fields = {k: getattr(req, k) for k in (
        "mounts", "publish", "dns", "dns_search", "dns_options", "add_hosts", "cpu_shares",
        "cpuset_cpus", "shm_size", "ipc_mode", "uts_mode", "cgroupns_mode", "memory_swap",
        "cgroup_parent", "pid_mode",
        "log_driver", "log_opts", "runtime", "isolation", "volume_driver", "exposed_ports",
        "restart_policy")}
    config = ContainerConfig(image="busybox", image_id="sha256:x", entrypoint=[],
                             cmd=["sleep", "1"], **fields)
    hc = inspect(Container(id="0" * 64, name="web", created="", config=config))["HostConfig"]
    for key, value in body["HostConfig"].items():
        if value is not None and key not in ("AutoRemove", "Init", "NetworkMode",
                                             "Privileged"):
            assert hc[key] == value, key
    assert hc["Binds"] == ["/srv:/data:ro,rprivate"]


@pytest.mark.parametrize("host_config, error", [
    ({"LogConfig": {"Type": "json-file"}}, None),  # the engine refuses it (it knows why)
    ({"Binds": ["/a:/b:rshared,rslave"]}, "invalid mode: rshared,rslave"),
    ({"MemorySwap": 1 << 30}, "You should always set the Memory limit"),
    ({"MemorySwap": 1 << 20, "Memory": 1 << 30}, "memoryswap limit should be larger"),
    ({"Runtime": "runc"}, "HostConfig.Runtime 'runc' is not supported"),
    ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup rule 'c 1:3'"),
    ({"ExposedPorts": None, "ShmSize": -1}, "must not be negative"),
])
def test_api_refuses_with_one_line(host_config: dict[str, object], error: str | None) -> None:
    body = {"Image": "busybox", "HostConfig": host_config}
    if error is None:
        assert parse_create(body).log_driver == "json-file"
        return
    with pytest.raises(InvalidArgument) as e:
        parse_create(body)
    assert error in str(e.value) and "\n" not in str(e.value)


def test_man_page_lists_every_container_key() -> None:
    from sdcontainer import manpages

    text = "\n".join(manpages.container_keys_roff())
    for key, flag in runflags.by_key().items():
        assert f"\\fB{manpages.roff(key)}\\fR" in text and manpages.roff(flag.unit_flag) in text
