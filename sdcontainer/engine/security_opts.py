"""docker's --security-opt, --device and privilege flags, checked at create time and
turned into what the launcher and the scope need.

SELinux and AppArmor are applied only where the host runs them; asking for a
label on a host without SELinux is a clear error, not a silent no-op.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidArgument
from ..model.spec import Device
from ..runtime.launcher import seccomp, security

SELINUX_ENFORCE = Path("/sys/fs/selinux/enforce")
APPARMOR_ENABLED = Path("/sys/module/apparmor/parameters/enabled")
DEFAULT_DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                   "/dev/tty", "/dev/ptmx"]


@dataclass
class Security:
    """The resolved settings of one container."""

    caps: list[str]
    no_new_privs: bool = True
    seccomp: str = "default"
    masked: bool = True
    apparmor: str = ""
    label_disabled: bool = False
    label: dict[str, str] = field(default_factory=dict)  # user/role/type/level overrides


def selinux_enabled() -> bool:
    """Whether this host runs SELinux."""
    return SELINUX_ENFORCE.exists()


def apparmor_enabled() -> bool:
    """Whether this host runs AppArmor."""
    try:
        return APPARMOR_ENABLED.read_text().strip().upper().startswith("Y")
    except OSError:
        return False


def _bool(value: str, opt: str) -> bool:
    if value.lower() in ("", "true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"invalid --security-opt {opt!r}: expected true or false")


def parse(opts: list[str], cap_add: list[str], cap_drop: list[str],
          privileged: bool) -> Security:
    """Check every option; InvalidArgument names the first bad one."""
    sec = Security(caps=security.resolve_caps(cap_add, cap_drop, privileged))
    if privileged:
        sec.seccomp, sec.masked, sec.no_new_privs = "unconfined", False, False
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep and ":" in opt and opt.split(":", 1)[0] in ("label", "seccomp", "apparmor",
                                                               "no-new-privileges"):
            key, _, value = opt.partition(":")  # docker's old colon form
        if key == "no-new-privileges":
            sec.no_new_privs = _bool(value, opt)
        elif key == "seccomp":
            sec.seccomp = _seccomp(value)
        elif key == "apparmor":
            if value not in ("unconfined", "") and not apparmor_enabled():
                raise InvalidArgument(f"AppArmor is not enabled on this host: cannot apply "
                                      f"profile {value!r}")
            sec.apparmor = "" if value == "unconfined" else value
        elif key == "label":
            _label(sec, value)
        elif key == "systempaths" and value == "unconfined":
            sec.masked = False
        else:
            raise InvalidArgument(f"invalid --security-opt {opt!r}")
    if sec.label and not selinux_enabled():
        raise InvalidArgument("SELinux is not enabled on this host: cannot apply label "
                              + ",".join(f"{k}:{v}" for k, v in sec.label.items()))
    return sec


def _seccomp(value: str) -> str:
    if value == "unconfined":
        return "unconfined"
    if value.startswith("{"):
        text = value  # the docker CLI sends the profile's content
    else:
        try:
            text = Path(value).read_text()
        except OSError as e:
            raise InvalidArgument(f"cannot read seccomp profile {value}: {e.strerror}") from None
    # Checked here, in one line naming what is wrong; the launcher interprets it again
    # (launcher/seccomp.py), with the container's capabilities, arch and kernel.
    seccomp.load_profile(text)
    return json.dumps(json.loads(text))


def _label(sec: Security, value: str) -> None:
    if value == "disable":
        sec.label_disabled = True
        return
    part, sep, v = value.partition(":")
    if not sep or part not in ("user", "role", "type", "level", "filetype") or not v:
        raise InvalidArgument(f"invalid --security-opt label={value!r}: want "
                              "user:U, role:R, type:T, level:L or disable")
    sec.label[part] = v


def selinux_labels(sec: Security, mcs: tuple[int, int] | None = None) -> tuple[str, str]:
    """(process label, file label) for a container, as container-selinux names them: a
    fresh MCS category pair keeps containers apart unless a level is given."""
    if sec.label_disabled:
        return "", ""
    if mcs is None:
        a, b = sorted(secrets.SystemRandom().sample(range(1024), 2))
        mcs = (a, b)
    level = sec.label.get("level") or f"s0:c{mcs[0]},c{mcs[1]}"
    user, role = sec.label.get("user", "system_u"), sec.label.get("role", "system_r")
    process = f"{user}:{role}:{sec.label.get('type', 'container_t')}:{level}"
    files = f"{user}:object_r:{sec.label.get('filetype', 'container_file_t')}:{level}"
    return process, files


def parse_device(spec: str) -> Device:
    """--device HOST[:CONTAINER][:PERMS] with the node's type and numbers."""
    parts = spec.split(":")
    host = parts[0]
    inner = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    if len(parts) > 3 or not host.startswith("/") or not set(perms) <= set("rwm") or not perms:
        raise InvalidArgument(f"invalid device specification: {spec!r}")
    try:
        st = os.stat(host)
    except OSError as e:
        raise InvalidArgument(f"error gathering device information for {host!r}: "
                              f"{e.strerror}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidArgument(f"{host} is not a device node")
    if inner.startswith("/proc") or ".." in inner.split("/"):
        raise InvalidArgument(f"invalid device path in the container: {inner!r}")
    return Device(host, inner, perms, "c" if stat.S_ISCHR(st.st_mode) else "b",
                  os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode))


def device_allow(devices: list[Device], privileged: bool
                 ) -> tuple[str, list[tuple[str, str]]]:
    """The scope's DevicePolicy and DeviceAllow: the default nodes, ptys, and --device ones."""
    if privileged:
        return "auto", []
    allow = [(d, "rwm") for d in DEFAULT_DEVICES] + [("char-pts", "rwm")]
    allow += [(d.host, d.perms) for d in devices]
    return "closed", allow
