"""The D-Bus man page documents every method, signal, property, error and action there is."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from sdcontainer import errors
from sdcontainer.dbus import polkit, service

PAGE = (Path(__file__).parents[2] / "docs" / "man" / "org.sdcontainer1.5.md").read_text()


def documented(word: str) -> bool:
    return re.search(rf"\*\*{re.escape(word)}[*(]", PAGE) is not None


def test_every_method_is_documented() -> None:
    missing = [m for m in (*service.METHODS, *service.CONTAINER_METHODS) if not documented(m)]
    assert not missing, missing


def test_every_signal_and_property_is_documented() -> None:
    for name in ("ContainerAdded", "ContainerRemoved", "ContainerStateChanged"):
        assert documented(name), name
    props = [n for n, _ in inspect.getmembers(service.ContainerObject)
             if n[:1].isupper() and n not in service.CONTAINER_METHODS]
    assert props, "no properties found"
    missing = [p for p in props if f"**{p}**" not in PAGE]
    assert not missing, missing


def test_every_error_name_and_action_is_documented() -> None:
    names = {c.dbus_name for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.SdcError)}
    missing = [n for n in names if f"**{n}**" not in PAGE]
    assert not missing, missing
    for action in (polkit.MANAGE, polkit.INSPECT):
        assert f"**{action}**" in PAGE, action
