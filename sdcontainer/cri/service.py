"""CRI's RuntimeService (runtime.v1) over Pods: protobuf in, engine records out.
Methods not defined here keep the generated servicer's answer, UNIMPLEMENTED."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from .. import __version__
from ..engine.records import Container
from ..errors import InvalidArgument, Unsupported
from ..model.spec import ContainerConfig, MountSpec
from .gen import api_pb2 as pb
from .gen import api_pb2_grpc
from .pods import Pods
from .records import CriMeta, exit_reason, label_match, meta_of, now_ns, to_ns
from .sandboxes import READY, Sandbox, new_sandbox_id
from .status import fill_unimplemented, rpc

log = logging.getLogger(__name__)

RUNTIME_NAME = "sdcontainer"
RUNTIME_API_VERSION = "v1"
KUBE_API_VERSION = "0.1.0"  # what kubelet's Version request carries and expects back
NETWORK_NOT_READY = "CNI is milestone 2: pods get loopback only"

STATES = {"created": pb.CONTAINER_CREATED, "running": pb.CONTAINER_RUNNING,
          "exited": pb.CONTAINER_EXITED, "dead": pb.CONTAINER_EXITED}


class RuntimeService(api_pb2_grpc.RuntimeServiceServicer):  # type: ignore[misc]
    """runtime.v1.RuntimeService."""

    def __init__(self, pods: Pods) -> None:
        self.pods = pods
        self.engine = pods.engine

    # -- runtime ----------------------------------------------------------------

    @rpc
    async def Version(self, request: Any, context: Any) -> Any:
        return pb.VersionResponse(version=KUBE_API_VERSION, runtime_name=RUNTIME_NAME,
                                  runtime_version=__version__,
                                  runtime_api_version=RUNTIME_API_VERSION)

    @rpc
    async def Status(self, request: Any, context: Any) -> Any:
        conditions = [
            pb.RuntimeCondition(type="RuntimeReady", status=True),
            pb.RuntimeCondition(type="NetworkReady", status=False,
                                reason="NetworkPluginNotReady", message=NETWORK_NOT_READY),
        ]
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions))

    @rpc
    async def RuntimeConfig(self, request: Any, context: Any) -> Any:
        return pb.RuntimeConfigResponse(
            linux=pb.LinuxRuntimeConfiguration(cgroup_driver=pb.SYSTEMD))

    # -- sandboxes --------------------------------------------------------------

    @rpc
    async def RunPodSandbox(self, request: Any, context: Any) -> Any:
        s = await self.pods.run(sandbox_from(request.config, request.runtime_handler))
        return pb.RunPodSandboxResponse(pod_sandbox_id=s.id)

    @rpc
    async def StopPodSandbox(self, request: Any, context: Any) -> Any:
        await self.pods.stop(request.pod_sandbox_id)
        return pb.StopPodSandboxResponse()

    @rpc
    async def RemovePodSandbox(self, request: Any, context: Any) -> Any:
        await self.pods.remove(request.pod_sandbox_id)
        return pb.RemovePodSandboxResponse()

    @rpc
    async def PodSandboxStatus(self, request: Any, context: Any) -> Any:
        s = self.pods.get(request.pod_sandbox_id)
        mode = {"pod": pb.POD, "node": pb.NODE}
        status = pb.PodSandboxStatus(
            id=s.id, metadata=sandbox_metadata(s), state=sandbox_state(s),
            created_at=s.created_at, network=pb.PodSandboxNetworkStatus(ip=""),
            linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(
                network=mode[s.net], ipc=mode[s.ipc], pid=pb.CONTAINER))),
            labels=s.labels, annotations=s.annotations, runtime_handler=s.runtime_handler)
        return pb.PodSandboxStatusResponse(status=status, timestamp=now_ns())

    @rpc
    async def ListPodSandbox(self, request: Any, context: Any) -> Any:
        f = request.filter if request.HasField("filter") else None
        items = []
        for s in sorted(self.pods.sandboxes.values(), key=lambda s: s.created_at):
            if f is not None:
                if f.id and not s.id.startswith(f.id):
                    continue
                if f.HasField("state") and f.state.state != sandbox_state(s):
                    continue
                if not label_match(s.labels, f.label_selector):
                    continue
            items.append(pb.PodSandbox(
                id=s.id, metadata=sandbox_metadata(s), state=sandbox_state(s),
                created_at=s.created_at, labels=s.labels, annotations=s.annotations,
                runtime_handler=s.runtime_handler))
        return pb.ListPodSandboxResponse(items=items)

    # -- containers -------------------------------------------------------------

    @rpc
    async def CreateContainer(self, request: Any, context: Any) -> Any:
        cfg, meta = container_from(request.config)
        c = await self.pods.create_container(request.pod_sandbox_id, cfg, meta)
        return pb.CreateContainerResponse(container_id=c.id)

    @rpc
    async def StartContainer(self, request: Any, context: Any) -> Any:
        await self.pods.start_container(request.container_id)
        return pb.StartContainerResponse()

    @rpc
    async def StopContainer(self, request: Any, context: Any) -> Any:
        await self.pods.stop_container(request.container_id, request.timeout)
        return pb.StopContainerResponse()

    @rpc
    async def RemoveContainer(self, request: Any, context: Any) -> Any:
        await self.pods.remove_container(request.container_id)
        return pb.RemoveContainerResponse()

    @rpc
    async def ContainerStatus(self, request: Any, context: Any) -> Any:
        c, meta = self.pods.container(request.container_id)
        why = exit_reason(c)
        mounts = [pb.Mount(container_path=m.target, host_path=m.source, readonly=m.readonly)
                  for m in c.config.mounts if m.type == "bind"]
        status = pb.ContainerStatus(
            id=c.id, metadata=pb.ContainerMetadata(name=meta.name, attempt=meta.attempt),
            state=container_state(c), created_at=to_ns(c.created),
            started_at=to_ns(c.state.started_at), finished_at=to_ns(c.state.finished_at),
            exit_code=c.state.exit_code if c.state.status in ("exited", "dead") else 0,
            image=pb.ImageSpec(image=meta.image), image_ref=c.config.image_id,
            image_id=c.config.image_id, reason=why.reason, message=why.message,
            labels=meta.labels, annotations=meta.annotations, mounts=mounts,
            log_path=meta.log_path)
        return pb.ContainerStatusResponse(status=status)

    @rpc
    async def ListContainers(self, request: Any, context: Any) -> Any:
        f = request.filter if request.HasField("filter") else None
        items = []
        for c in self.pods.containers():
            meta = meta_of(c)
            assert meta is not None
            if f is not None:
                if f.id and not c.id.startswith(f.id):
                    continue
                if f.pod_sandbox_id and not meta.sandbox_id.startswith(f.pod_sandbox_id):
                    continue
                if f.HasField("state") and f.state.state != container_state(c):
                    continue
                if not label_match(meta.labels, f.label_selector):
                    continue
            items.append(pb.Container(
                id=c.id, pod_sandbox_id=meta.sandbox_id,
                metadata=pb.ContainerMetadata(name=meta.name, attempt=meta.attempt),
                image=pb.ImageSpec(image=meta.image), image_ref=c.config.image_id,
                image_id=c.config.image_id, state=container_state(c),
                created_at=to_ns(c.created), labels=meta.labels, annotations=meta.annotations))
        return pb.ListContainersResponse(containers=items)

    @rpc
    async def ExecSync(self, request: Any, context: Any) -> Any:
        c, _ = self.pods.container(request.container_id)
        if not request.cmd:
            raise InvalidArgument("ExecSync: cmd is empty")
        result = await self.engine.execs.run(c.id, list(request.cmd),
                                             request.timeout if request.timeout > 0 else None)
        if result.timed_out:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"command {list(request.cmd)!r} timed out after "
                                f"{request.timeout} s")
        return pb.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr,
                                   exit_code=result.exit_code)

    @rpc
    async def ReopenContainerLog(self, request: Any, context: Any) -> Any:
        await self.pods.reopen_log(request.container_id)
        return pb.ReopenContainerLogResponse()


fill_unimplemented(RuntimeService, api_pb2_grpc.RuntimeServiceServicer)


# -- protobuf to records, records to protobuf -------------------------------------

def sandbox_state(s: Sandbox) -> Any:
    """CRI's PodSandboxState of S."""
    return pb.SANDBOX_READY if s.state == READY else pb.SANDBOX_NOTREADY


def sandbox_metadata(s: Sandbox) -> Any:
    """CRI's PodSandboxMetadata of S."""
    return pb.PodSandboxMetadata(name=s.name, uid=s.uid, namespace=s.namespace,
                                 attempt=s.attempt)


def container_state(c: Container) -> Any:
    """CRI's ContainerState of engine container C."""
    return STATES.get(c.state.status, pb.CONTAINER_UNKNOWN)


def check_pid_mode(security_context: Any) -> None:
    """Refuse a shared PID namespace (shareProcessNamespace, hostPID): every container
    has its own.  Without namespace options at all (crictl's minimal configs, where
    the enum's zero reads as POD) a container's own is what is meant."""
    if not security_context.HasField("namespace_options"):
        return
    if security_context.namespace_options.pid != pb.CONTAINER:
        raise Unsupported("a pod-wide or host PID namespace is not supported yet "
                          "(shareProcessNamespace, hostPID): each container has its own")


def sandbox_from(config: Any, runtime_handler: str) -> Sandbox:
    """A new sandbox record from a PodSandboxConfig; what we cannot honour yet is
    refused, never silently dropped."""
    if runtime_handler:
        raise Unsupported(f"runtime handler {runtime_handler!r}: sdcontainer has only its "
                          "default one")
    if any(p.host_port for p in config.port_mappings):
        raise Unsupported("hostPort mappings need CNI, which is milestone 2")
    linux = config.linux
    if linux.sysctls:
        raise Unsupported("pod sysctls are not supported yet")
    ns = linux.security_context.namespace_options
    check_pid_mode(linux.security_context)
    modes = {pb.POD: "pod", pb.NODE: "node"}
    for kind, value in (("network", ns.network), ("ipc", ns.ipc)):
        if value not in modes:
            raise InvalidArgument(f"pod {kind} namespace mode {value} is not POD or NODE")
    net = modes[ns.network]
    dns = config.dns_config
    md = config.metadata
    return Sandbox(
        id=new_sandbox_id(), name=md.name, uid=md.uid, namespace=md.namespace,
        attempt=md.attempt, hostname=config.hostname if net == "pod" else "",
        log_directory=config.log_directory, dns_servers=list(dns.servers),
        dns_searches=list(dns.searches), dns_options=list(dns.options),
        cgroup_parent=linux.cgroup_parent, labels=dict(config.labels),
        annotations=dict(config.annotations), runtime_handler=runtime_handler, net=net,
        ipc=modes[ns.ipc], uts=net,  # a host-network pod has the host's name too
        created_at=now_ns(), state=READY)


def env_entry(kv: Any) -> str:
    """KEY=VALUE of a KeyValue, whose value is bytes in this api.proto (string in older
    ones: the wire form is the same)."""
    value = kv.value
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            raise InvalidArgument(f"environment variable {kv.key}: not UTF-8") from None
    if not kv.key or "=" in kv.key:
        raise InvalidArgument(f"invalid environment variable name {kv.key!r}")
    return f"{kv.key}={value}"


def container_from(config: Any) -> tuple[ContainerConfig, CriMeta]:
    """The engine config and CRI metadata of a CRI ContainerConfig (the sandbox's
    namespaces, slice and DNS are Pods.create_container's to add)."""
    if not config.metadata.name:
        raise InvalidArgument("container metadata needs a name")
    if not config.image.image:
        raise InvalidArgument("container config needs an image")
    if config.devices or config.CDI_devices:
        raise Unsupported("devices are not supported yet")
    linux = config.linux
    sec = linux.security_context
    check_pid_mode(sec)
    mounts = []
    # CRI's propagation is runc's: HOST_TO_CONTAINER is rslave, BIDIRECTIONAL rshared
    # (the launcher refuses them, as docker does, when the host path is not shared).
    propagation = {pb.PROPAGATION_PRIVATE: "", pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
                   pb.PROPAGATION_BIDIRECTIONAL: "rshared"}
    for m in config.mounts:
        if m.propagation not in propagation:
            raise InvalidArgument(f"mount {m.container_path}: unknown propagation "
                                  f"{m.propagation}")
        mounts.append(MountSpec(type="bind", source=m.host_path, target=m.container_path,
                                readonly=m.readonly, origin="mounts",
                                propagation=propagation[m.propagation]))
    user = ""
    if sec.run_as_username:
        user = sec.run_as_username
    elif sec.HasField("run_as_user"):
        user = str(sec.run_as_user.value)
    if user and sec.HasField("run_as_group"):
        user = f"{user}:{sec.run_as_group.value}"
    res = linux.resources
    nano_cpus = 0
    if res.cpu_quota > 0 and res.cpu_period > 0:
        nano_cpus = res.cpu_quota * 10**9 // res.cpu_period
    stop_signal = "" if config.stop_signal == pb.RUNTIME_DEFAULT else \
        pb.Signal.Name(config.stop_signal)
    cfg = ContainerConfig(
        image=config.image.image, entrypoint=list(config.command) or None,
        cmd=list(config.args) or None, env=[env_entry(kv) for kv in config.envs],
        working_dir=config.working_dir, user=user, tty=config.tty, open_stdin=config.stdin,
        stop_signal=stop_signal, mounts=mounts, privileged=sec.privileged,
        cap_add=list(sec.capabilities.add_capabilities),
        cap_drop=list(sec.capabilities.drop_capabilities), read_only=sec.readonly_rootfs,
        memory=max(res.memory_limit_in_bytes, 0), nano_cpus=nano_cpus,
        cpu_shares=max(res.cpu_shares, 0), cpuset_cpus=res.cpuset_cpus)
    meta = CriMeta(sandbox_id="", name=config.metadata.name, attempt=config.metadata.attempt,
                   labels=dict(config.labels), annotations=dict(config.annotations),
                   image=config.image.image, log_path=config.log_path)
    return cfg, meta

