"""The error hierarchy shared by every layer.

Library code raises these; only the edges translate them: the CLI into one line
and an exit code, the REST API into docker's JSON error shape and an HTTP
status, the D-Bus API into a named bus error.  Exit codes follow docker's
convention for daemon-side failures (125).
"""

from __future__ import annotations


class SdcError(Exception):
    """Base of every error sdcontainer reports to a user."""

    http_status = 500
    exit_code = 125
    dbus_name = "org.sdcontainer1.Error.Failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(SdcError):
    """The caller asked for something malformed (a bad name, flag or value)."""

    http_status = 400
    dbus_name = "org.sdcontainer1.Error.InvalidArgument"


class NotFound(SdcError):
    """A container, image, network or volume that does not exist."""

    http_status = 404
    dbus_name = "org.sdcontainer1.Error.NotFound"


class NoSuchContainer(NotFound):
    """No container by that name or id."""


class NoSuchImage(NotFound):
    """No image by that reference."""


class Conflict(SdcError):
    """The request clashes with the current state (name in use, running, ...)."""

    http_status = 409
    dbus_name = "org.sdcontainer1.Error.Conflict"


class NotModified(SdcError):
    """Nothing to do (start of a running container, stop of a stopped one)."""

    http_status = 304
    dbus_name = "org.sdcontainer1.Error.NotModified"


class Unsupported(SdcError):
    """A valid request this host or this build cannot honour."""

    http_status = 501
    dbus_name = "org.sdcontainer1.Error.NotSupported"


class PermissionDenied(SdcError):
    """The caller may not do this."""

    http_status = 403
    dbus_name = "org.sdcontainer1.Error.AccessDenied"


class ImageError(SdcError):
    """An image is malformed, fails verification, or cannot be fetched."""

    http_status = 500
    dbus_name = "org.sdcontainer1.Error.Image"


class RegistryError(ImageError):
    """A registry refused or failed a request."""


class ManifestUnknown(RegistryError):
    """The registry has no manifest by that tag or digest (docker answers 404)."""

    http_status = 404


class DigestMismatch(ImageError):
    """Bytes did not hash to the digest that named them."""


class UnsafeArchive(ImageError):
    """A layer or archive tried to escape its root or break a limit."""

    http_status = 400


class SystemdError(SdcError):
    """systemd refused or failed a request."""


class LaunchError(SdcError):
    """The sandbox could not be built or the workload could not be executed."""

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DaemonUnavailable(SdcError):
    """The CLI cannot reach sdcontainerd."""

    exit_code = 1
