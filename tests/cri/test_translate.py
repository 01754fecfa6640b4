"""The CRI service's translations, without a daemon: config, names, times, credentials,
and what a request becomes (or why it is refused)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from sdcontainer.cri.config import CriConfig
from sdcontainer.cri.gen import api_pb2 as pb
from sdcontainer.cri.images import credentials
from sdcontainer.cri.pins import check_hostname
from sdcontainer.cri.records import CriMeta, container_name, meta_of, to_ns
from sdcontainer.cri.service import container_from, sandbox_from
from sdcontainer.engine.records import NAME_RE, Container
from sdcontainer.errors import InvalidArgument, Unsupported
from sdcontainer.model.spec import ContainerConfig


def test_config(tmp_path: Path) -> None:
    assert CriConfig.load(tmp_path / "missing.toml") == CriConfig()
    f = tmp_path / "sdcontainer.toml"
    f.write_text('[network]\nmtu = 1400\n[cri]\nenable = true\ngroup = "kube"\n')
    assert CriConfig.load(f) == CriConfig(enable=True, group="kube")
    for bad in ('[cri]\nenable = "yes"\n', "[cri]\nport = 1\n", '[cri]\nsocket = "cri.sock"\n'):
        f.write_text(bad)
        with pytest.raises(InvalidArgument, match=r"\[cri\]"):
            CriConfig.load(f)


def test_names_times_and_metadata() -> None:
    sandbox = "0123456789" * 6
    assert container_name("app", "web.v1", "default", sandbox, 2) == \
        "k8s-app-web-v1-default-01234567-2"
    long = container_name("a" * 60, "p" * 60, "ns", sandbox, 0)
    assert len(long) <= 64 and re.fullmatch(r"[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*", long)
    assert NAME_RE.fullmatch(long)
    assert long != container_name("a" * 60, "p" * 60, "ns", sandbox, 1)
    assert to_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert to_ns("0001-01-01T00:00:00Z") == 0
    meta = CriMeta(sandbox_id="s" * 64, name="app", attempt=1, labels={"a": "b"},
                   log_path="/var/log/pods/x/app/1.log")
    c = Container(id="c" * 64, name="n", created="",
                  config=ContainerConfig(image="i", labels={"x": "y",
                                                             **meta.labels_for_engine()}))
    assert meta_of(c) == meta
    assert meta_of(Container(id="d" * 64, name="m", created="",
                             config=ContainerConfig(image="i"))) is None
    check_hostname("web-1.example")
    for bad in ("-x", "a b", "a;b", "x" * 70):
        with pytest.raises(InvalidArgument):
            check_hostname(bad)


def test_credentials() -> None:
    assert credentials(pb.AuthConfig()) is None
    assert credentials(pb.AuthConfig(username="u", password="p")) == ("u", "p")
    auth = base64.b64encode(b"u:p:q").decode()
    assert credentials(pb.AuthConfig(auth=auth)) == ("u", "p:q")
    assert credentials(pb.AuthConfig(identity_token="t")) == ("<token>", "t")
    with pytest.raises(InvalidArgument):
        credentials(pb.AuthConfig(auth="not base64!"))


def pod(**linux: object) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", uid="u", namespace="n"),
                               hostname="p", linux=pb.LinuxPodSandboxConfig(**linux))


def test_sandbox_requests() -> None:
    s = sandbox_from(pod(cgroup_parent="kubepods-pod1.slice"), "")
    assert (s.net, s.ipc, s.uts, s.hostname, s.cgroup_parent) == \
        ("pod", "pod", "pod", "p", "kubepods-pod1.slice")
    host = sandbox_from(pod(security_context=pb.LinuxSandboxSecurityContext(
        namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))), "")
    assert (host.net, host.uts, host.ipc, host.hostname) == ("node", "node", "pod", "")
    refused = [
        (pod(), "runc"),
        (pod(sysctls={"net.core.somaxconn": "1024"}), ""),
        (pod(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pb.POD))), ""),
    ]
    with_port = pod()
    with_port.port_mappings.add(container_port=80, host_port=8080)
    refused.append((with_port, ""))
    for config, handler in refused:
        with pytest.raises(Unsupported):
            sandbox_from(config, handler)


def test_container_request() -> None:
    cfg, meta = container_from(pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="app", attempt=3), image=pb.ImageSpec(image="busybox"),
        args=["echo", "hi"], envs=[pb.KeyValue(key="A", value=b"1")], log_path="app/3.log",
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(cpu_quota=50000, cpu_period=100000,
                                                 memory_limit_in_bytes=64 << 20),
            security_context=pb.LinuxContainerSecurityContext(
                run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=10)))))
    assert (cfg.entrypoint, cfg.cmd, cfg.env) == (None, ["echo", "hi"], ["A=1"])
    assert (cfg.user, cfg.nano_cpus, cfg.memory) == ("1000:10", 500_000_000, 64 << 20)
    assert (meta.name, meta.attempt, meta.image, meta.log_path) == \
        ("app", 3, "busybox", "app/3.log")
    with pytest.raises(InvalidArgument):
        container_from(pb.ContainerConfig(metadata=pb.ContainerMetadata(name="x")))
    # Mount propagation is runc's mapping: HOST_TO_CONTAINER rslave, BIDIRECTIONAL rshared.
    props = [pb.PROPAGATION_PRIVATE, pb.PROPAGATION_HOST_TO_CONTAINER,
             pb.PROPAGATION_BIDIRECTIONAL]
    cfg, _ = container_from(pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="m"), image=pb.ImageSpec(image="busybox"),
        mounts=[pb.Mount(container_path=f"/m{i}", host_path="/srv", propagation=p)
                for i, p in enumerate(props)]))
    assert [m.propagation for m in cfg.mounts] == ["", "rslave", "rshared"]
