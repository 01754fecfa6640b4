"""sdcontainerd: owns container state and serves the Docker-compatible API.

Start-up order matters: import everything and build the zygote *before* any
thread exists (asyncio's executor, D-Bus), so monitors fork from a single
threaded, frozen heap.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import grp
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from .. import __version__, paths
from ..errors import SdcError

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("sdcontainerd")


def build_parser() -> argparse.ArgumentParser:
    """sdcontainerd's command line (also the source of sdcontainerd(8))."""
    p = argparse.ArgumentParser(prog="sdcontainerd", description=__doc__)
    p.add_argument("--debug", "-D", action="store_true", help="log debug messages")
    p.add_argument("-H", "--host", action="append", default=[],
                   help=f"listen on unix://PATH (default unix://{paths.SOCKET})")
    p.add_argument("--group", "-G", default="sdcontainer",
                   help="group that may use the unix socket (default: sdcontainer)")
    p.add_argument("--version", action="version", version=f"sdcontainerd {__version__}")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """sdcontainerd's command line, parsed."""
    return build_parser().parse_args(argv)


def setup_logging(debug: bool) -> None:
    """Log to stderr; under systemd that is the journal, with our unit attached."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


async def listen_unix(server: object, path: str, group: str) -> asyncio.AbstractServer:
    """The API socket, root:GROUP 0660 from the moment it exists (no wider window)."""
    import asyncio

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    old = os.umask(0o117)
    try:
        srv = await asyncio.start_unix_server(server.handle, path, limit=1 << 20)  # type: ignore[attr-defined]
    finally:
        os.umask(old)
    try:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    except KeyError:
        log.info("group %s does not exist; %s is root-only", group, path)
    return srv


async def serve(args: argparse.Namespace, engine: object) -> None:
    """Run until SIGTERM or SIGINT."""
    import asyncio

    import pystemd.daemon

    from ..api import build_server
    from ..api.images import ImageAPI
    from ..api.networks import NetworkAPI
    from .core import Engine

    assert isinstance(engine, Engine)
    watchdog = asyncio.ensure_future(ping_watchdog())
    await engine.reconcile()
    server = build_server(engine, [ImageAPI(engine), NetworkAPI(engine)])
    hosts = args.host or [f"unix://{paths.SOCKET}"]
    servers = []
    for h in hosts:
        if not h.startswith("unix://"):
            raise SdcError(f"unsupported listen address {h!r} (only unix:// for now)")
        servers.append(await listen_unix(server, h[len("unix://"):], args.group))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pystemd.daemon.notify(False, "READY=1", f"STATUS=serving {', '.join(hosts)}")
    log.info("sdcontainerd %s serving %s", __version__, ", ".join(hosts))
    await stop.wait()
    pystemd.daemon.notify(False, "STOPPING=1")
    watchdog.cancel()
    for s in servers:
        s.close()


async def ping_watchdog() -> None:
    """Tell systemd we live, twice per WatchdogSec: a wedged event loop gets us restarted."""
    import asyncio

    import pystemd.daemon

    usec = int(os.environ.get("WATCHDOG_USEC", "0") or "0")
    while usec > 0:
        pystemd.daemon.notify(False, "WATCHDOG=1")
        await asyncio.sleep(usec / 2e6)


def main(argv: list[str] | None = None) -> int:
    """Entry point of sdcontainerd."""
    args = parse_args(argv)
    setup_logging(args.debug)
    try:
        # The zygote is forked first, from a small heap holding only what a monitor
        # needs, frozen: each monitor then dirties few copy-on-write pages.  The
        # daemon's own libraries (pystemd's manager, pyroute2, the API) come after.
        from .. import monitor  # noqa: F401
        from ..records import ContainerStore, ensure_dirs
        from ..zygote import Zygote

        ensure_dirs()
        store = ContainerStore()
        lock_fd = store.lock()
        gc.collect()
        gc.freeze()
        zygote = Zygote(close_fds=(lock_fd,))
        gc.unfreeze()

        from ..images.store import ImageStore
        from ..network import NetworkConfig, NetworkManager
        from .core import Engine
        from .networking import ContainerNetworking

        images = ImageStore(paths.IMAGES_DIR)
        engine = Engine(store, images, zygote)
        engine.network = ContainerNetworking(
            NetworkManager(paths.STATE_DIR, paths.RUN_DIR, NetworkConfig.load(paths.CONFIG_FILE)),
            engine.get)
        import asyncio

        try:
            asyncio.run(serve(args, engine))
        finally:
            zygote.close()
            os.close(lock_fd)
    except SdcError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
