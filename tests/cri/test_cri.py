"""The CRI service end to end, as kubelet drives it: a gRPC client on the socket,
real scopes in the pod's slice, real namespaces pinned for the pod."""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from sdcontainer.cri.gen import api_pb2 as pb
from tests.integration.conftest import sdc, sh, systemctl, unit_property, wait_for

from .conftest import CRI_SOCKET, Cri, restart_daemon

pytestmark = pytest.mark.box

PODS = Path("/run/sdcontainer/cri/pods")
RECORDS = Path("/var/lib/sdcontainer/cri/sandboxes")
T = 60  # every call's deadline: a hang fails the test, never the run


def ns_inode(path: str) -> int:
    """The inode of a namespace file (pinned or /proc/PID/ns/*)."""
    return os.stat(path).st_ino


def exec_out(cri: Cri, cid: str, *cmd: str) -> str:
    r = cri.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=20),
                             timeout=T)
    assert r.exit_code == 0, r.stderr
    return str(r.stdout.decode())


def list_containers(cri: Cri, **filters: Any) -> dict[str, int]:
    """id -> state of the CRI containers FILTERS select."""
    f = pb.ContainerFilter(**filters)
    r = cri.runtime.ListContainers(pb.ListContainersRequest(filter=f), timeout=T)
    return {c.id: c.state for c in r.containers}


def pod_state(cri: Cri, pod: str) -> dict[str, int]:
    r = cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(id=pod)),
                                   timeout=T)
    return {s.id: s.state for s in r.items}


def test_pod_lifecycle(cri: Cri, tmp_path: Path) -> None:
    rand = uuid.uuid4().hex[:8]
    pod_slice = f"sdctest-pod{rand}.slice"  # systemd nests it in sdctest.slice
    logs = tmp_path / "pods" / rand
    image = cri.images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image="busybox")),
                                   timeout=T).image
    assert image.id.startswith("sha256:")
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=f"web-{rand}", uid=str(uuid.uuid4()),
                                       namespace="default"),
        hostname=f"web-{rand}", log_directory=str(logs),
        dns_config=pb.DNSConfig(servers=["10.96.0.10"],
                                searches=["default.svc.cluster.local", "svc.cluster.local"],
                                options=["ndots:5"]),
        labels={"app": "web", "rand": rand}, annotations={"note": "kept"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=pod_slice,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(
                network=pb.POD, ipc=pb.POD, pid=pb.CONTAINER))))
    pod = cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config),
                                    timeout=T).pod_sandbox_id
    pins = {kind: ns_inode(str(PODS / pod / kind)) for kind in ("net", "ipc", "uts")}
    assert stat.S_IMODE(os.stat(CRI_SOCKET).st_mode) == 0o660

    scripts = {"app": 'trap "echo again" USR1; trap "exit 0" TERM; echo out-line; '
                      'echo err-line >&2; while :; do sleep 1000 & wait $!; done',
               "side": "exec sleep 1000"}
    ids: dict[str, str] = {}
    for name, script in scripts.items():
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=image.id),
            command=["/bin/sh", "-c"], args=[script], log_path=f"{name}/0.log",
            labels={"role": name}, annotations={"a": name},
            envs=[pb.KeyValue(key="WHO", value=name.encode())])
        ids[name] = cri.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=config), timeout=T).container_id
        cri.runtime.StartContainer(pb.StartContainerRequest(container_id=ids[name]), timeout=T)

    scopes = {}
    for name, cid in ids.items():
        # The scope sits directly in the pod's slice, which systemd nests as usual.
        cgroup = exec_out(cri, cid, "cat", "/proc/self/cgroup")
        m = re.search(rf"/sdctest\.slice/{re.escape(pod_slice)}/(sdcontainer-[^/\s]+\.scope)",
                      cgroup)
        assert m, cgroup
        scopes[name] = m.group(1)
        assert unit_property(m.group(1), "Slice") == pod_slice
        # Every container is in the pod's pinned net, IPC and UTS namespaces.
        for kind, inode in pins.items():
            assert exec_out(cri, cid, "readlink", f"/proc/1/ns/{kind}").strip() == \
                f"{kind}:[{inode}]"
        assert exec_out(cri, cid, "hostname").strip() == f"web-{rand}"
        resolv = exec_out(cri, cid, "cat", "/etc/resolv.conf")
        assert "nameserver 10.96.0.10" in resolv
        assert "search default.svc.cluster.local svc.cluster.local" in resolv
        assert "options ndots:5" in resolv
        assert exec_out(cri, cid, "sh", "-c", "echo $WHO").strip() == name
        # An ordinary engine container: `sdcontainer ps` and machinectl show it.
        engine_name = sdc("inspect", "-f", "{{.Name}}", cid).stdout.strip().lstrip("/")
        assert engine_name.startswith(f"k8s-{name}-web-{rand}-default-{pod[:8]}-0")
        assert cid[:12] in sdc("ps", "-q", "--no-trunc").stdout
        assert sh("machinectl", "show", engine_name, "-p", "Class", "--value").stdout.strip() \
            == "container"

    r = cri.runtime.ExecSync(pb.ExecSyncRequest(
        container_id=ids["app"], cmd=["sh", "-c", "echo o; echo e >&2; exit 3"], timeout=20),
        timeout=T)
    assert (r.stdout, r.stderr, r.exit_code) == (b"o\n", b"e\n", 3)
    with pytest.raises(grpc.RpcError) as e:
        cri.runtime.ExecSync(pb.ExecSyncRequest(container_id=ids["app"], cmd=["sleep", "30"],
                                                timeout=1), timeout=T)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    # The CRI log file: `<RFC3339Nano> stdout|stderr F <line>`, as kubelet reads it.
    log = logs / "app" / "0.log"
    assert wait_for(lambda: log.exists() and "err-line" in log.read_text())
    lines = log.read_text().splitlines()
    for stream, text in (("stdout", "out-line"), ("stderr", "err-line")):
        line = next(x for x in lines if x.endswith(f" {text}"))
        stamp, got_stream, tag, body = line.split(" ", 3)
        assert (got_stream, tag, body) == (stream, "F", text)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", stamp)

    # kubelet rotates: it renames the file and asks for a reopen.
    log.rename(log.with_name("0.log.1"))
    cri.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=ids["app"]),
                                   timeout=T)
    exec_out(cri, ids["app"], "kill", "-USR1", "1")
    assert wait_for(lambda: log.exists() and "stdout F again" in log.read_text())
    assert "again" not in log.with_name("0.log.1").read_text()

    st = cri.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=ids["app"]),
                                     timeout=T).status
    assert (st.id, st.metadata.name, st.state) == (ids["app"], "app", pb.CONTAINER_RUNNING)
    assert dict(st.labels) == {"role": "app"} and dict(st.annotations) == {"a": "app"}
    assert st.log_path == str(log) and st.image_ref == image.id
    assert st.created_at > 0 and st.started_at >= st.created_at and st.finished_at == 0

    assert list_containers(cri, pod_sandbox_id=pod) == {
        ids["app"]: pb.CONTAINER_RUNNING, ids["side"]: pb.CONTAINER_RUNNING}
    assert list(list_containers(cri, label_selector={"role": "side"})) == [ids["side"]]
    assert list(list_containers(cri, id=ids["app"][:12], pod_sandbox_id=pod[:12])) == [ids["app"]]
    assert list_containers(cri, pod_sandbox_id=pod,
                           state=pb.ContainerStateValue(state=pb.CONTAINER_EXITED)) == {}
    sel = cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
        label_selector={"rand": rand}, state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))),
        timeout=T).items
    assert [s.id for s in sel] == [pod] and dict(sel[0].annotations) == {"note": "kept"}

    cri.runtime.StopContainer(pb.StopContainerRequest(container_id=ids["side"], timeout=2),
                              timeout=T)
    st = cri.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=ids["side"]),
                                     timeout=T).status
    assert st.state == pb.CONTAINER_EXITED and st.finished_at >= st.started_at > 0
    assert st.exit_code != 0 and st.reason == "Error"

    # Records survive the daemon: same ids, same states; the stopped one can go.
    cri.close()
    restart_daemon()
    cri = Cri.connect()
    assert pod_state(cri, pod) == {pod: pb.SANDBOX_READY}
    assert list_containers(cri, pod_sandbox_id=pod) == {
        ids["app"]: pb.CONTAINER_RUNNING, ids["side"]: pb.CONTAINER_EXITED}
    cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=ids["side"]), timeout=T)
    assert list(list_containers(cri, pod_sandbox_id=pod)) == [ids["app"]]

    cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=T)
    assert pod_state(cri, pod) == {pod: pb.SANDBOX_NOTREADY}
    assert list_containers(cri, pod_sandbox_id=pod) == {ids["app"]: pb.CONTAINER_EXITED}
    assert not (PODS / pod).exists()
    cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=T)
    cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=T)

    # Nothing is left: records, scopes, pins, and no process holds the pod's netns.
    assert pod_state(cri, pod) == {} and list_containers(cri, pod_sandbox_id=pod) == {}
    assert not (RECORDS / f"{pod}.json").exists() and not (PODS / pod).exists()
    for scope in scopes.values():
        assert unit_property(scope, "ActiveState") == "inactive"
    ps = sdc("ps", "-aq", "--no-trunc").stdout
    assert not any(cid in ps for cid in ids.values())
    held = [p for p in Path("/proc").glob("[0-9]*/ns/net")
            if os.path.exists(p) and _inode(p) == pins["net"]]
    assert held == []
    cri.close()
    # The pod's slice is kubelet's to remove, as kubelet does when the pod is gone.
    systemctl("stop", pod_slice)
    assert sh("systemctl", "is-active", pod_slice, check=False).stdout.strip() != "active"


def _inode(p: Path) -> int:
    try:
        return os.stat(p).st_ino
    except OSError:
        return -1


def test_runtime_answers(cri: Cri) -> None:
    v = cri.runtime.Version(pb.VersionRequest(version="0.1.0"), timeout=T)
    assert (v.runtime_name, v.runtime_api_version) == ("sdcontainer", "v1")
    conditions = {c.type: c for c in cri.runtime.Status(pb.StatusRequest(),
                                                        timeout=T).status.conditions}
    assert conditions["RuntimeReady"].status
    assert not conditions["NetworkReady"].status
    assert conditions["NetworkReady"].reason == "NetworkPluginNotReady"
    rc = cri.runtime.RuntimeConfig(pb.RuntimeConfigRequest(), timeout=T)
    assert rc.linux.cgroup_driver == pb.SYSTEMD
    fs = cri.images.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=T)
    assert fs.image_filesystems[0].used_bytes.value > 0
    assert cri.images.ImageStatus(pb.ImageStatusRequest(
        image=pb.ImageSpec(image="no-such-image:1")), timeout=T).HasField("image") is False

    listed = cri.images.ListImages(pb.ListImagesRequest(filter=pb.ImageFilter(
        image=pb.ImageSpec(image="busybox"))), timeout=T).images
    assert [i.repo_tags for i in listed] == [["busybox:latest"]]
    cri.images.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="no-such:1")),
                           timeout=T)

    # A host-network pod pins only its IPC namespace.
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="hostnet", uid=str(uuid.uuid4()), namespace="n"),
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))))
    pod = cri.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config),
                                    timeout=T).pod_sandbox_id
    assert sorted(p.name for p in (PODS / pod).iterdir()) == ["ipc"]
    cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=T)
    assert not (PODS / pod).exists()

    calls = [
        (cri.runtime.UpdateContainerResources, pb.UpdateContainerResourcesRequest(),
         grpc.StatusCode.UNIMPLEMENTED),
        (cri.runtime.Attach, pb.AttachRequest(), grpc.StatusCode.UNIMPLEMENTED),
        (cri.runtime.PodSandboxStatus, pb.PodSandboxStatusRequest(pod_sandbox_id="0" * 64),
         grpc.StatusCode.NOT_FOUND),
        (cri.runtime.ContainerStatus, pb.ContainerStatusRequest(container_id="0" * 64),
         grpc.StatusCode.NOT_FOUND),
        (cri.runtime.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id="0" * 64, config=pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="x"), image=pb.ImageSpec(image="busybox"))),
         grpc.StatusCode.NOT_FOUND),
        (cri.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="bad", uid="u", namespace="n"),
            linux=pb.LinuxPodSandboxConfig(cgroup_parent="not/a/slice"))),
         grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for method, request, code in calls:
        with pytest.raises(grpc.RpcError) as e:
            method(request, timeout=T)
        assert e.value.code() == code, (method, e.value.details())
