"""sdcontainerd: owns container state and serves the Docker-compatible API.

Start-up order matters: import everything and build the zygote *before* any
thread exists (asyncio's executor, D-Bus), so monitors fork from a single
threaded, frozen heap.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from typing import Any

from . import __version__, paths
from .errors import SdcError

log = logging.getLogger("sdcontainerd")


def build_parser() -> argparse.ArgumentParser:
    """sdcontainerd's command line (also the source of sdcontainerd(8))."""
    p = argparse.ArgumentParser(prog="sdcontainerd", description=__doc__)
    p.add_argument("--debug", "-D", action="store_true", help="log debug messages")
    p.add_argument("-H", "--host", action="append", default=[],
                   help=f"listen on unix://PATH or tcp://ADDR:PORT (default "
                        f"unix://{paths.SOCKET})")
    p.add_argument("--group", "-G", default=None,
                   help="group that may use the unix socket (default: sdcontainer)")
    p.add_argument("--tls", action="store_true", default=None,
                   help="serve tcp:// hosts with TLS (implied by --tlsverify)")
    p.add_argument("--tlsverify", action="store_true", default=None,
                   help="serve tcp:// hosts with TLS and require client certificates "
                        "signed by --tlscacert")
    p.add_argument("--tlscacert", help="CA that signs the client certificates")
    p.add_argument("--tlscert", help="the server's certificate")
    p.add_argument("--tlskey", help="the server's private key")
    p.add_argument("--insecure-tcp", action="store_true", default=None,
                   help="allow tcp:// without TLS: anyone who can connect is root")
    p.add_argument("--version", action="version", version=f"sdcontainerd {__version__}")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """sdcontainerd's command line, parsed."""
    return build_parser().parse_args(argv)


def setup_logging(debug: bool) -> None:
    """Log to stderr; under systemd that is the journal, with our unit attached."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def api_settings(args: argparse.Namespace) -> tuple[list[str], str, Any]:
    """Hosts, socket group and TLS settings: flags over the [api] table of sdcontainer.toml."""
    from .api.tlsconf import TLSSettings
    from .util.tomlsection import read_section

    section = read_section(paths.CONFIG_FILE, "api")

    def pick(flag: Any, key: str, default: Any) -> Any:
        value = flag if flag is not None else section.get(key, default)
        if not isinstance(value, type(default)):
            raise SdcError(f"{paths.CONFIG_FILE}: [api] {key} must be a {type(default).__name__}")
        return value

    hosts = args.host or pick(None, "hosts", [f"unix://{paths.SOCKET}"])
    tls = TLSSettings(tls=pick(args.tls, "tls", False), verify=pick(args.tlsverify, "tlsverify",
                                                                    False),
                      cacert=pick(args.tlscacert, "tlscacert", ""),
                      cert=pick(args.tlscert, "tlscert", ""), key=pick(args.tlskey, "tlskey", ""),
                      insecure_tcp=pick(args.insecure_tcp, "insecure_tcp", False))
    return [str(h) for h in hosts], pick(args.group, "group", "sdcontainer"), tls


async def listen(handle: Any, hosts: list[str], group: str, tls: Any) -> list[Any]:
    """A listener per host; TCP only with TLS unless forced (then loudly)."""
    from .api.listen import TCPListener, listen_unix, parse_tcp
    from .api.tlsconf import server_context

    ctx = server_context(tls) if tls.enabled else None
    servers: list[Any] = []
    for h in hosts:
        if h.startswith("unix://"):
            servers.append(await listen_unix(handle, h[len("unix://"):], group))
        elif h.startswith("tcp://"):
            if ctx is None and not tls.insecure_tcp:
                raise SdcError(f"refusing to serve {h} without TLS: use --tlsverify with "
                               "--tlscacert, --tlscert and --tlskey (or force --insecure-tcp)")
            if ctx is None:
                log.warning("serving %s WITHOUT TLS: anyone who can connect is root", h)
            elif not tls.verify:
                log.warning("serving %s with TLS but without client certificates "
                            "(--tlsverify): anyone who can connect is root", h)
            listener = TCPListener(handle, *parse_tcp(h), ctx)
            listener.start()
            servers.append(listener)
        else:
            raise SdcError(f"unsupported listen address {h!r} (unix:// or tcp://)")
    return servers


async def serve(args: argparse.Namespace, engine: object) -> bool:
    """Run until SIGTERM or SIGINT (True), or until the zygote dies (False)."""
    import asyncio

    import pystemd.daemon

    from .api import build_server
    from .api.images import ImageAPI
    from .api.networks import NetworkAPI
    from .engine.core import Engine
    from .systemd import bus

    assert isinstance(engine, Engine)
    hosts, group, tls = api_settings(args)
    watchdog = asyncio.ensure_future(ping_watchdog())
    # The one system-bus connection: systemd's calls and signals, and our D-Bus API.
    system = await bus.system_bus()
    if engine.network is not None:
        engine.network.start_dns()  # user networks' DNS servers; reconcile brings them up
    await engine.reconcile()
    server = build_server(engine, [ImageAPI(engine), NetworkAPI(engine)])
    servers = await listen(server.handle, hosts, group, tls)
    from .dbus.service import DBusAPI

    dbus_api = await DBusAPI.start(engine, system.bus)
    # Kubernetes' CRI, opt-in ([cri] enable): grpc is imported only then (its threads
    # come after the zygote's fork, which happened in main).
    cri = await start_cri(engine, group)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Without the zygote no container can start, yet the API would look healthy: its
    # death is fatal.  We exit with a failure, systemd restarts us (Restart=on-failure)
    # with a new zygote, and running containers live on in their scopes meanwhile.
    failed: list[str] = []
    zygote_fd = os.pidfd_open(engine.zygote.pid)

    def zygote_died() -> None:
        log.critical("the zygote (pid %d) died: no container could start; exiting so that "
                     "systemd restarts sdcontainerd", engine.zygote.pid)
        failed.append("the zygote died")
        stop.set()

    loop.add_reader(zygote_fd, zygote_died)
    pystemd.daemon.notify(False, "READY=1", f"STATUS=serving {', '.join(hosts)}")
    log.info("sdcontainerd %s serving %s", __version__, ", ".join(hosts))
    await stop.wait()
    loop.remove_reader(zygote_fd)
    os.close(zygote_fd)
    pystemd.daemon.notify(False, "STOPPING=1")
    watchdog.cancel()
    if cri is not None:
        await cri.close()
    if dbus_api is not None:
        await dbus_api.close()
    for s in servers:
        s.close()
    if engine.network is not None:
        await engine.network.stop_dns()
    bus.close()
    return not failed


async def start_cri(engine: object, group: str) -> Any:
    """The CRI server when [cri] enable is set (docs/kubernetes.md), else None."""
    from .cri.config import CriConfig

    config = CriConfig.load(paths.CONFIG_FILE)
    if not config.enable:
        return None
    from .cri.grpcserver import CriServer
    from .engine.core import Engine

    assert isinstance(engine, Engine)
    return await CriServer.start(engine, config, config.group or group)


async def ping_watchdog() -> None:
    """Tell systemd we live, twice per WatchdogSec: a wedged event loop gets us restarted."""
    import asyncio

    import pystemd.daemon

    usec = int(os.environ.get("WATCHDOG_USEC", "0") or "0")
    while usec > 0:
        pystemd.daemon.notify(False, "WATCHDOG=1")
        await asyncio.sleep(usec / 2e6)


def check_tls_apart(tls: Any) -> None:
    """Load the TLS files in a throwaway child, to fail early on bad ones: the private
    key must never be in the heap the zygote, and so every monitor and container
    process forked from it, copies.  The daemon loads it for real after the fork."""
    from .api.tlsconf import server_context

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            server_context(tls)
        except BaseException as e:
            os.write(w, str(e).encode()[:4000] or b"bad TLS settings")
            code = 1
        os._exit(code)
    os.close(w)
    message = b""
    while chunk := os.read(r, 4096):
        message += chunk
    os.close(r)
    os.waitpid(pid, 0)
    if message:
        raise SdcError(message.decode(errors="replace"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of sdcontainerd."""
    args = parse_args(argv)
    setup_logging(args.debug)
    try:
        # Bad API settings (a missing or mismatched TLS file, plain TCP) stop us with one
        # line before anything is locked, forked or touched.
        hosts, _, tls = api_settings(args)
        if tls.enabled:
            check_tls_apart(tls)
        plain = [h for h in hosts if h.startswith("tcp://")] if not tls.enabled else []
        if plain and not tls.insecure_tcp:
            raise SdcError(f"refusing to serve {plain[0]} without TLS: use --tlsverify with "
                           "--tlscacert, --tlscert and --tlskey (or force --insecure-tcp)")
        # The zygote is forked first, from a small heap holding only what a monitor
        # needs, frozen: each monitor then dirties few copy-on-write pages.  The
        # daemon's own libraries (dbus-fast, pyroute2, the API) come after.
        from .engine.records import ContainerStore, ensure_dirs
        from .runtime import monitor  # noqa: F401
        from .runtime.zygote import Zygote

        ensure_dirs()
        store = ContainerStore()
        lock_fd = store.lock()
        gc.collect()
        gc.freeze()
        zygote = Zygote(close_fds=(lock_fd,))
        gc.unfreeze()

        from .engine.core import Engine
        from .engine.networking import ContainerNetworking
        from .images.store import ImageStore
        from .network import NetworkConfig, NetworkManager

        images = ImageStore(paths.IMAGES_DIR)
        engine = Engine(store, images, zygote)
        manager = NetworkManager(paths.STATE_DIR, paths.RUN_DIR,
                                 NetworkConfig.load(paths.CONFIG_FILE))
        manager.check_subnet()  # a clash with a host route stops us with a one-line error
        engine.network = ContainerNetworking(manager, engine.get)
        import asyncio

        try:
            if not asyncio.run(serve(args, engine)):
                return 1
        finally:
            zygote.close()
            os.close(lock_fd)
    except SdcError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
