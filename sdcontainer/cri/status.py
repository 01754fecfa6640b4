"""Our errors as gRPC status codes, once for every CRI method."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from ..errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SdcError,
    Unsupported,
)

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any, Any], Awaitable[Any]]

CODES: tuple[tuple[type[SdcError], Any], ...] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (Unsupported, grpc.StatusCode.UNIMPLEMENTED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
)


def code_for(e: SdcError) -> Any:
    """The gRPC status code of error E (UNKNOWN for a failure of no particular kind)."""
    return next((code for cls, code in CODES if isinstance(e, cls)), grpc.StatusCode.UNKNOWN)


def rpc(method: Handler) -> Handler:
    """Wrap a servicer method: our errors become their status code and message; a bug
    becomes INTERNAL and a logged traceback, never a hung call."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except SdcError as e:
            log.debug("CRI %s: %s", method.__name__, e)
            await context.abort(code_for(e), str(e))
        except Exception as e:
            log.exception("CRI %s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__}: {e}")

    return wrapper


# Why a method answers UNIMPLEMENTED (docs/kubernetes.md has the plan).
LATER = {
    "Exec": "the streaming server (Exec, Attach, PortForward) is milestone 4",
    "Attach": "the streaming server (Exec, Attach, PortForward) is milestone 4",
    "PortForward": "the streaming server (Exec, Attach, PortForward) is milestone 4",
    "UpdateContainerResources": "resource updates are milestone 3",
    "ContainerStats": "stats are milestone 3",
    "ListContainerStats": "stats are milestone 3",
    "PodSandboxStats": "stats are milestone 3",
    "ListPodSandboxStats": "stats are milestone 3",
}


def unimplemented(name: str) -> Handler:
    """A method answering UNIMPLEMENTED at once, on the loop and without the traceback
    the generated servicer's NotImplementedError would log."""

    async def method(self: Any, request: Any, context: Any) -> Any:
        why = LATER.get(name, "not supported")
        await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                            f"{name} is not implemented by sdcontainer: {why}")

    method.__name__ = name
    return method


def fill_unimplemented(cls: type, base: type) -> None:
    """Give CLS an UNIMPLEMENTED answer for every method of generated servicer BASE
    that it does not define itself."""
    for name, value in vars(base).items():
        if callable(value) and not name.startswith("_") and name not in vars(cls):
            setattr(cls, name, unimplemented(name))
