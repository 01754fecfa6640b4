"""Docker's JSON for container security: HostConfig's privilege fields in."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgument
from ..model.spec import Device
from .wire import get, get_str_list


def create_fields(hc: dict[str, Any]) -> dict[str, Any]:
    """The security fields of the engine's create input (a ContainerConfig)."""
    devices = []
    for d in get(hc, "Devices", list, [], "HostConfig."):
        if not isinstance(d, dict) or not isinstance(d.get("PathOnHost"), str):
            raise InvalidArgument("HostConfig.Devices entries must be objects with PathOnHost")
        inner = d.get("PathInContainer") or d["PathOnHost"]
        perms = d.get("CgroupPermissions") or "rwm"
        devices.append(Device(d["PathOnHost"], inner, perms))
    return {
        "privileged": get(hc, "Privileged", bool, False, "HostConfig."),
        "cap_add": get_str_list(hc, "CapAdd", "HostConfig.") or [],
        "cap_drop": get_str_list(hc, "CapDrop", "HostConfig.") or [],
        "security_opt": get_str_list(hc, "SecurityOpt", "HostConfig.") or [],
        "devices": devices,
        "group_add": get_str_list(hc, "GroupAdd", "HostConfig.") or [],
        "userns": get(hc, "UsernsMode", str, "", "HostConfig."),
    }
