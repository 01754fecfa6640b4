"""D-Bus errors become errors.py's classes by their names (or errno), never by their text."""

from __future__ import annotations

import pytest
from dbus_fast import DBusError

from sdcontainer.errors import (
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SystemdError,
    Unsupported,
)
from sdcontainer.systemd.bus import error_class, map_error


@pytest.mark.parametrize(("name", "cls"), [
    ("org.freedesktop.systemd1.NoSuchUnit", NotFound),
    ("org.freedesktop.systemd1.LoadFailed", NotFound),
    ("org.freedesktop.machine1.NoSuchMachine", NotFound),
    ("org.freedesktop.systemd1.UnitExists", Conflict),
    ("org.freedesktop.systemd1.JobTypeNotApplicable", Conflict),
    ("org.freedesktop.systemd1.TransactionIsDestructive", Conflict),
    ("org.freedesktop.machine1.MachineExists", Conflict),
    ("org.freedesktop.DBus.Error.NotSupported", Unsupported),
    ("org.freedesktop.DBus.Error.AccessDenied", PermissionDenied),
    ("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", PermissionDenied),
    ("org.freedesktop.DBus.Error.InvalidArgs", InvalidArgument),
    ("System.Error.ENOENT", NotFound),
    ("System.Error.EEXIST", Conflict),
    ("System.Error.EOPNOTSUPP", Unsupported),
    ("System.Error.EPERM", PermissionDenied),
    ("System.Error.EINVAL", InvalidArgument),
    ("System.Error.EIO", SystemdError),
    ("org.freedesktop.DBus.Error.Failed", SystemdError),
    ("org.example.Unheard.Of", SystemdError),
])
def test_error_names_map_to_classes(name: str, cls: type) -> None:
    assert error_class(name) is cls


def test_the_text_is_shown_not_interpreted() -> None:
    # An English message that once fooled substring matching ("not found", "exists")
    # changes nothing: the name decides.
    e = map_error(DBusError("org.freedesktop.DBus.Error.Failed",
                            "Unit x.scope not found; already exists; invalid"), "cannot stop x")
    assert type(e) is SystemdError
    assert str(e) == "cannot stop x: Unit x.scope not found; already exists; invalid"
    e = map_error(DBusError("org.freedesktop.systemd1.NoSuchUnit", "Unit y not loaded."),
                  "cannot kill y")
    assert isinstance(e, NotFound) and str(e) == "cannot kill y: Unit y not loaded."
